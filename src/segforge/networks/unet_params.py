"""The JSON params the builtin U-Nets share (pydantic; plain data only, no classes or import paths).

Per-stage lists (``features_per_stage``, ``kernel_sizes``, ``strides``) define the number of
stages and, through the length of each kernel, the dims (2 or 3). Per-stage counts
(``n_conv_per_stage``, ``n_blocks_per_stage``, ``n_conv_per_stage_decoder``) may be one int for
every stage or a list; a list longer than needed is cut to the number of stages (so
nnU-Net's ResEnc default ``[1, 3, 4, 6, 6, 6]`` fits any depth) and values are stored as lists,
so a params JSON round-trips to an equal model.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from segforge.networks.builder import NetworkParams
from segforge.networks.layers import KwargValue, check_layer_kwargs

_DEFAULT_KERNELS = [[3, 3, 3]] * 4
_DEFAULT_STRIDES = [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2]]


def per_stage(value: Any, n: int, what: str) -> list[int]:
    """Expand an int to ``n`` entries or cut a longer list to ``n``; shorter lists are an error."""
    values = [value] * n if isinstance(value, int) else list(value)
    if len(values) < n:
        raise ValueError(f"needs {n} entries ({what}), got {len(values)}")
    if any(v < 1 for v in values[:n]):
        raise ValueError(f"entries must be >= 1, got {values[:n]}")
    return values[:n]


def stage_count(info: ValidationInfo) -> int | None:
    feats = info.data.get("features_per_stage")
    return len(feats) if feats else None


class UNetParams(NetworkParams):
    """Topology and layers of an nnU-Net-style U-Net; defaults are a valid small 3D net (4 stages)."""

    features_per_stage: list[int] = Field(default_factory=lambda: [32, 64, 128, 256], min_length=2)
    kernel_sizes: list[list[int]] = Field(default_factory=lambda: [list(k) for k in _DEFAULT_KERNELS])
    strides: list[list[int]] = Field(default_factory=lambda: [list(s) for s in _DEFAULT_STRIDES])
    n_conv_per_stage_decoder: int | list[int] = Field(default=2, validate_default=True)
    conv_bias: bool = True
    norm: Literal["instance", "batch", "group"] = "instance"
    norm_kwargs: dict[str, KwargValue] = Field(default_factory=dict)
    nonlin: Literal["leaky_relu", "relu", "gelu"] = "leaky_relu"
    nonlin_kwargs: dict[str, KwargValue] = Field(default_factory=dict)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)

    @property
    def dims(self) -> int:
        return len(self.kernel_sizes[0])

    @property
    def n_stages(self) -> int:
        return len(self.features_per_stage)

    @field_validator("features_per_stage")
    @classmethod
    def _positive_features(cls, value: list[int]) -> list[int]:
        if any(v < 1 for v in value):
            raise ValueError(f"channel counts must be >= 1, got {value}")
        return value

    @field_validator("n_conv_per_stage_decoder")
    @classmethod
    def _decoder_counts(cls, value: Any, info: ValidationInfo) -> Any:
        n = stage_count(info)
        return value if n is None else per_stage(value, n - 1, "one per decoder level = stages - 1")

    @model_validator(mode="after")
    def _consistent(self) -> UNetParams:
        n = self.n_stages
        for name in ("kernel_sizes", "strides"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} stages, features_per_stage has {n}")
        dims = {len(k) for k in self.kernel_sizes + self.strides}
        if len(dims) != 1 or dims.pop() not in (2, 3):
            raise ValueError("every kernel size and stride must have the same number of axes, 2 or 3")
        if any(k < 1 or k % 2 == 0 for ks in self.kernel_sizes for k in ks):
            raise ValueError(f"kernel sizes must be odd and >= 1, got {self.kernel_sizes}")
        if any(s < 1 for st in self.strides for s in st):
            raise ValueError(f"strides must be >= 1, got {self.strides}")
        check_layer_kwargs("norm", self.norm, self.norm_kwargs)
        check_layer_kwargs("nonlin", self.nonlin, self.nonlin_kwargs)
        return self
