"""The JSON params of ``swin_unet``, validated without importing torch.

A plans file stores these values; the planner reads them to learn which patch sizes the
network accepts (:func:`divisors`). Per-axis fields (``window_size``, ``patch_size``) accept
one int for every axis and are stored as lists, so a params JSON round-trips to an equal
model. Their defaults depend on ``dims``: windows of 4 voxels per axis in 3D and 7 in 2D
(Swin's own 2D window), patch embedding 2 per axis in both.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from segforge.networks.builder import NetworkParams

#: window per axis when ``window_size`` is not given
DEFAULT_WINDOW: dict[int, int] = {2: 7, 3: 4}
#: patch-embedding stride per axis when ``patch_size`` is not given
DEFAULT_PATCH = 2


def _per_axis(value: Any, dims: int, name: str) -> Any:
    """One int for every axis becomes a list; a list must have one entry per axis, each >= 1."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value] * dims
    if isinstance(value, (list, tuple)):
        if len(value) != dims:
            raise ValueError(f"needs one entry per axis ({dims} for dims={dims}), got {list(value)}")
        if any(isinstance(v, int) and v < 1 for v in value):
            raise ValueError(f"entries must be >= 1, got {list(value)}")
        return list(value)
    return value  # pydantic reports the type error with the field's name


class SwinUNetParams(NetworkParams):
    """Swin U-Net topology: embedding width, blocks and heads per stage, window and patch per axis."""

    dims: Literal[2, 3] = Field(default=3, description="2 or 3 spatial dimensions")
    embed_dim: int = Field(default=48, ge=1, description="channels of stage 0; doubled by every patch merging")
    depths: list[int] = Field(
        default_factory=lambda: [2, 2, 2, 2],
        min_length=2,
        description="Swin blocks per stage; the number of entries is the number of stages (>= 2)",
    )
    num_heads: list[int] = Field(
        default_factory=lambda: [3, 6, 12, 24],
        validate_default=True,  # checked against depths and embed_dim even when left at the default
        description="attention heads per stage (one entry per stage)",
    )
    window_size: list[int] = Field(
        default=None,
        validate_default=True,
        description="attention window per axis in tokens (default 4 per axis in 3D, 7 in 2D; an int means every axis)",
    )
    patch_size: list[int] = Field(
        default=None,
        validate_default=True,
        description="patch-embedding stride per axis (default 2; 1 along a coarse axis of anisotropic data)",
    )
    mlp_ratio: float = Field(default=4.0, gt=0, description="hidden width of each block's MLP relative to its input")
    drop_path_rate: float = Field(
        default=0.1, ge=0.0, lt=1.0, description="stochastic depth, rising linearly to this over all blocks"
    )

    @property
    def n_stages(self) -> int:
        return len(self.depths)

    @field_validator("depths")
    @classmethod
    def _positive_depths(cls, value: list[int]) -> list[int]:
        if any(d < 1 for d in value):
            raise ValueError(f"every stage needs at least one block, got {value}")
        return value

    @field_validator("num_heads")
    @classmethod
    def _heads_fit_channels(cls, value: list[int], info: ValidationInfo) -> list[int]:
        depths, embed = info.data.get("depths"), info.data.get("embed_dim")
        if depths is None or embed is None:  # already reported on those fields
            return value
        if len(value) != len(depths):
            raise ValueError(f"needs one entry per stage ({len(depths)}, as depths), got {value}")
        for stage, heads in enumerate(value):
            channels = embed * 2**stage
            if heads < 1 or channels % heads:
                raise ValueError(
                    f"stage {stage} has {channels} channels (embed_dim * 2^{stage}), "
                    f"which {heads} heads do not divide evenly"
                )
        return value

    @field_validator("window_size", mode="before")
    @classmethod
    def _window_per_axis(cls, value: Any, info: ValidationInfo) -> Any:
        dims = info.data.get("dims", 3)
        return _per_axis(DEFAULT_WINDOW[dims] if value is None else value, dims, "window_size")

    @field_validator("patch_size", mode="before")
    @classmethod
    def _patch_per_axis(cls, value: Any, info: ValidationInfo) -> Any:
        dims = info.data.get("dims", 3)
        return _per_axis(DEFAULT_PATCH if value is None else value, dims, "patch_size")


def divisors(params: SwinUNetParams) -> tuple[int, ...]:
    """Per axis: ``patch_size * 2^(n_stages - 1) * window_size``, the edge every input must be a multiple of.

    Patch embedding divides the edge by ``patch_size``; each of the ``n_stages - 1`` patch
    mergings halves it; and at every stage the feature map must tile into whole windows.
    The deepest stage is the binding one: an edge that is a multiple of the divisor leaves
    ``k * window_size`` tokens there and ``k * 2^j * window_size`` at the stages above.
    """
    scale = 2 ** (params.n_stages - 1)
    return tuple(p * scale * w for p, w in zip(params.patch_size, params.window_size, strict=True))
