"""The module named by the ``segforge`` entry point: the hooks segforge calls.

Components are imported inside the hooks, so listing plugins (``segforge plugins list``)
stays cheap and never imports torch.
"""

from __future__ import annotations

from typing import Any

from segforge import hookimpl
from segforge_swinunet import __version__


@hookimpl
def segforge_register_networks(registry: Any) -> None:
    from segforge_swinunet.builder import SwinUNetBuilder

    registry.add(SwinUNetBuilder())


@hookimpl
def segforge_register_trainers(registry: Any) -> None:
    from segforge_swinunet.trainer import SwinAdamWTrainer

    registry.add(SwinAdamWTrainer)


@hookimpl
def segforge_report_header() -> str:
    return f"segforge-swinunet {__version__}: network swin_unet, trainer swin_adamw"
