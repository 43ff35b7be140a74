"""segforge-swinunet: a Swin-transformer U-Net (``swin_unet``) for segforge, added through its plugin hooks.

Installing the package makes the network available; a run uses it only when selected with
``--network swin_unet`` (or by a plans file that names it).
"""

__version__ = "0.1.0"
