"""Layers resolved from JSON-friendly string specs (MONAI style: ``("instance", 3)`` -> InstanceNorm3d).

Plans must stay plain data, so a network's params name its norm and non-linearity by string
(``"instance"``, ``"leaky_relu"``) with a kwargs dict, never by class or dotted import path.
This module owns the name tables, the per-name defaults (nnU-Net's: instance norm with
``eps=1e-5, affine=True``, leaky ReLU with slope 0.01) and the check of user kwargs, so a typo
in plans is a one-line error naming the field instead of a ``TypeError`` deep inside torch.

Importing this module does not import torch: the tables and :func:`check_layer_kwargs` are used
by pydantic validation, which runs in torch-free commands such as ``segforge plugins list``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from segforge.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

KwargValue = bool | int | float | str

#: norm name -> (defaults, accepted kwargs)
NORMS: dict[str, tuple[dict[str, KwargValue], frozenset[str]]] = {
    "instance": ({"eps": 1e-5, "affine": True}, frozenset({"eps", "momentum", "affine", "track_running_stats"})),
    "batch": ({"eps": 1e-5, "affine": True}, frozenset({"eps", "momentum", "affine", "track_running_stats"})),
    "group": ({"num_groups": 8, "eps": 1e-5, "affine": True}, frozenset({"num_groups", "eps", "affine"})),
}

#: non-linearity name -> (defaults, accepted kwargs)
NONLINS: dict[str, tuple[dict[str, KwargValue], frozenset[str]]] = {
    "leaky_relu": ({"negative_slope": 1e-2, "inplace": True}, frozenset({"negative_slope", "inplace"})),
    "relu": ({"inplace": True}, frozenset({"inplace"})),
    "gelu": ({}, frozenset({"approximate"})),
}


def check_layer_kwargs(kind: str, name: str, kwargs: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` (pydantic turns it into a field error) for kwargs the layer does not take."""
    table = NORMS if kind == "norm" else NONLINS
    if name not in table:
        raise ValueError(f"unknown {kind} '{name}' (available: {', '.join(table)})")
    unknown = sorted(set(kwargs) - table[name][1])
    if unknown:
        raise ValueError(
            f"{kind} '{name}' does not accept {', '.join(unknown)} (accepted: {', '.join(sorted(table[name][1]))})"
        )


def conv_op(dims: int) -> type[nn.Module]:
    """``nn.Conv2d`` or ``nn.Conv3d``."""
    from torch import nn

    return {2: nn.Conv2d, 3: nn.Conv3d}[dims]


def transposed_conv_op(dims: int) -> type[nn.Module]:
    from torch import nn

    return {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[dims]


def norm_op(name: str, dims: int) -> type[nn.Module]:
    """The norm class for a name in :data:`NORMS` (``group`` is dimension-free)."""
    from torch import nn

    if name == "group":
        return nn.GroupNorm
    table = {"instance": (nn.InstanceNorm2d, nn.InstanceNorm3d), "batch": (nn.BatchNorm2d, nn.BatchNorm3d)}
    return table[name][dims - 2]


def nonlin_op(name: str) -> type[nn.Module]:
    from torch import nn

    return {"leaky_relu": nn.LeakyReLU, "relu": nn.ReLU, "gelu": nn.GELU}[name]


def dropout_op(dims: int) -> type[nn.Module]:
    """Channel dropout, as nnU-Net's ``dropout_op``."""
    from torch import nn

    return {2: nn.Dropout2d, 3: nn.Dropout3d}[dims]


def avg_pool_op(dims: int) -> type[nn.Module]:
    from torch import nn

    return {2: nn.AvgPool2d, 3: nn.AvgPool3d}[dims]


def _merged(table: dict[str, tuple[dict[str, KwargValue], frozenset[str]]], name: str, kwargs: Mapping) -> dict:
    defaults = dict(table[name][0])
    defaults.update(kwargs)
    return defaults


@dataclass(frozen=True)
class LayerSpec:
    """Everything a block needs to create its layers; an encoder holds one and its decoder reuses it.

    ``dims`` is 2 or 3; ``dropout`` is the channel-dropout probability (0 disables it, as nnU-Net).
    """

    dims: int
    conv_bias: bool = True
    norm: str = "instance"
    norm_kwargs: Mapping[str, KwargValue] = field(default_factory=dict)
    nonlin: str = "leaky_relu"
    nonlin_kwargs: Mapping[str, KwargValue] = field(default_factory=dict)
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.dims not in (2, 3):
            raise ConfigError(f"network dims must be 2 or 3, got {self.dims}", hint="give 2D or 3D kernel sizes")
        for kind, name, kwargs in (("norm", self.norm, self.norm_kwargs), ("nonlin", self.nonlin, self.nonlin_kwargs)):
            try:
                check_layer_kwargs(kind, name, kwargs)
            except ValueError as exc:
                raise ConfigError(
                    f"network {kind}: {exc}", hint=f"fix '{kind}'/'{kind}_kwargs' in the params"
                ) from None

    def conv(self, in_ch: int, out_ch: int, kernel: list[int], stride: list[int] | int = 1, bias: bool | None = None):
        """A 'same'-padded convolution (odd kernels keep the size; strides divide it)."""
        padding = [(k - 1) // 2 for k in kernel]
        bias = self.conv_bias if bias is None else bias
        return conv_op(self.dims)(in_ch, out_ch, kernel, stride, padding, bias=bias)

    def transposed_conv(self, in_ch: int, out_ch: int, stride: list[int]) -> nn.Module:
        """Upsampling by a transposed convolution with kernel == stride (exact inverse of the shape change)."""
        return transposed_conv_op(self.dims)(in_ch, out_ch, stride, stride, bias=self.conv_bias)

    def norm_layer(self, channels: int) -> nn.Module:
        kwargs = _merged(NORMS, self.norm, self.norm_kwargs)
        if self.norm == "group":
            # the requested group count must divide the channels; fall back to the largest divisor of both
            groups = math.gcd(int(kwargs.pop("num_groups")), channels)
            return norm_op("group", self.dims)(groups, channels, **kwargs)
        return norm_op(self.norm, self.dims)(channels, **kwargs)

    def nonlin_layer(self) -> nn.Module:
        return nonlin_op(self.nonlin)(**_merged(NONLINS, self.nonlin, self.nonlin_kwargs))

    def dropout_layer(self) -> nn.Module | None:
        """Channel dropout (Dropout2d/3d) as nnU-Net's ``dropout_op``; ``None`` when the probability is 0."""
        return dropout_op(self.dims)(p=self.dropout) if self.dropout else None

    def avg_pool(self, stride: list[int]) -> nn.Module:
        return avg_pool_op(self.dims)(stride, stride)
