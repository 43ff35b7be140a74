"""segforge: self-configuring medical image segmentation, built from plugins.

The public API for plugin authors is :data:`hookimpl`; for users, :func:`get_registries`,
:func:`build_network` and :mod:`segforge.api` (``Predictor``, ``plan_and_preprocess``, ``train``,
``evaluate``: docs/python-api.md). Importing segforge is cheap: torch is imported only when a
network is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from segforge._version import __version__
from segforge.errors import SegforgeError
from segforge.hookspecs import hookimpl
from segforge.plugins import get_manager, get_registries

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

__all__ = ["__version__", "hookimpl", "SegforgeError", "get_manager", "get_registries", "build_network",
           "Predictor", "plan_and_preprocess", "train", "evaluate"]  # fmt: skip

#: names of :mod:`segforge.api`, imported on first use (``segforge --version`` must stay free of torch)
_API_NAMES = frozenset({"Predictor", "plan_and_preprocess", "train", "evaluate"})


def __getattr__(name: str) -> Any:
    """``from segforge import Predictor`` loads :mod:`segforge.api` only when asked for."""
    if name in _API_NAMES:
        from segforge import api

        return getattr(api, name)
    raise AttributeError(f"module 'segforge' has no attribute {name!r}")


def build_network(
    name: str,
    params: dict[str, Any] | None = None,
    *,
    in_channels: int,
    num_classes: int,
    deep_supervision: bool = True,
) -> nn.Module:
    """Build the registered network ``name`` with ``params`` (a dict validated by its Params)."""
    builder = get_registries().network.get(name)
    parsed = builder.parse_params(params or {}) if hasattr(builder, "parse_params") else params
    return builder.build(parsed, in_channels, num_classes, deep_supervision)
