"""``residual_unet``: nnU-Net's ResEnc U-Net (v2 ResidualEncoderUNet).

A one-conv stem, then ``n_blocks_per_stage`` ResNet-D basic blocks per encoder stage (the first
block strides; its skip average-pools and projects), and the same plain decoder as
``generic_unet`` with one conv per level by default (nnU-Net's ResEnc planner). Init: He, plus
the last norm of every residual block zeroed so each block starts as the identity.
Topology proposal and patch constraints are those of ``generic_unet``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, ValidationInfo, field_validator

from segforge.networks.unet_builder import UNetBuilderBase
from segforge.networks.unet_params import UNetParams, per_stage, stage_count

if TYPE_CHECKING:  # pragma: no cover
    from segforge.networks.encoders import Encoder
    from segforge.networks.layers import LayerSpec
    from segforge.networks.unet import UNet

#: nnU-Net v2 ResEnc planner's blocks per stage (cut to the number of stages)
DEFAULT_BLOCKS_PER_STAGE = [1, 3, 4, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6]


class ResidualUNetParams(UNetParams):
    """Params of ``residual_unet``: the shared U-Net fields plus residual blocks per stage and the stem width."""

    n_blocks_per_stage: int | list[int] = Field(
        default_factory=lambda: list(DEFAULT_BLOCKS_PER_STAGE), validate_default=True
    )
    n_conv_per_stage_decoder: int | list[int] = Field(default=1, validate_default=True)
    #: stem output channels; ``None`` uses ``features_per_stage[0]``
    stem_channels: int | None = Field(default=None, ge=1)

    @field_validator("n_blocks_per_stage")
    @classmethod
    def _encoder_blocks(cls, value: Any, info: ValidationInfo) -> Any:
        n = stage_count(info)
        return value if n is None else per_stage(value, n, "one per stage")


class ResidualUNetBuilder(UNetBuilderBase):
    """nnU-Net's residual-encoder U-Net (ResEnc) with deep supervision."""

    name: ClassVar[str] = "residual_unet"
    version: ClassVar[str] = "1.0"
    Params: ClassVar[type[ResidualUNetParams]] = ResidualUNetParams

    def proposed_extras(self, n_stages: int) -> dict[str, Any]:
        """nnU-Net's ResEnc planner: blocks ``[1, 3, 4, 6, 6, ...]``, one conv per decoder level."""
        return {
            "n_blocks_per_stage": DEFAULT_BLOCKS_PER_STAGE[:n_stages],
            "n_conv_per_stage_decoder": [1] * (n_stages - 1),
        }

    def make_encoder(self, params: ResidualUNetParams, spec: LayerSpec, in_channels: int) -> Encoder:
        from segforge.networks.encoders import ResidualEncoder

        return ResidualEncoder(
            spec,
            in_channels,
            params.features_per_stage,
            params.kernel_sizes,
            params.strides,
            params.n_blocks_per_stage,
            params.stem_channels,
        )

    def initialize(self, network: UNet) -> None:
        from segforge.networks.blocks import zero_init_residual_norms

        super().initialize(network)
        zero_init_residual_norms(network)
