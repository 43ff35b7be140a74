"""``generic_unet``: nnU-Net's Generic_UNet / v2 PlainConvUNet.

Per encoder stage ``n_conv_per_stage`` conv-norm-nonlin units (the first strided, which is how
the stage downsamples); per decoder level a transposed conv (kernel == stride), concatenation
with the skip and ``n_conv_per_stage_decoder`` units; 1x1 segmentation heads; He init.
Defaults: instance norm (eps 1e-5, affine), leaky ReLU 0.01, conv bias, no dropout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, ValidationInfo, field_validator

from segforge.networks.unet_builder import UNetBuilderBase
from segforge.networks.unet_params import UNetParams, per_stage, stage_count

if TYPE_CHECKING:  # pragma: no cover
    from segforge.networks.encoders import Encoder
    from segforge.networks.layers import LayerSpec


class GenericUNetParams(UNetParams):
    """Params of ``generic_unet``: the shared U-Net fields plus convs per encoder stage."""

    n_conv_per_stage: int | list[int] = Field(default=2, validate_default=True)

    @field_validator("n_conv_per_stage")
    @classmethod
    def _encoder_counts(cls, value: Any, info: ValidationInfo) -> Any:
        n = stage_count(info)
        return value if n is None else per_stage(value, n, "one per stage")


class GenericUNetBuilder(UNetBuilderBase):
    """nnU-Net's plain-conv U-Net (Generic_UNet / PlainConvUNet) with deep supervision."""

    name: ClassVar[str] = "generic_unet"
    version: ClassVar[str] = "1.0"
    Params: ClassVar[type[GenericUNetParams]] = GenericUNetParams

    def proposed_extras(self, n_stages: int) -> dict[str, Any]:
        return {"n_conv_per_stage": [2] * n_stages, "n_conv_per_stage_decoder": [2] * (n_stages - 1)}

    def make_encoder(self, params: GenericUNetParams, spec: LayerSpec, in_channels: int) -> Encoder:
        from segforge.networks.encoders import PlainConvEncoder

        return PlainConvEncoder(
            spec, in_channels, params.features_per_stage, params.kernel_sizes, params.strides, params.n_conv_per_stage
        )
