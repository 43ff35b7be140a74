"""An example segforge plugin: one tiny network builder."""

__version__ = "0.1.0"
