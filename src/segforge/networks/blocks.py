"""Dimension-agnostic building blocks: conv-norm-nonlin stacks and ResNet-D basic blocks.

Blocks receive a :class:`~segforge.networks.layers.LayerSpec` instead of layer classes, so
the same code builds 2D and 3D networks and the choice of norm/non-linearity stays plain
data in plans (dynamic-network-architectures' block layout, without class-valued kwargs).
"""

from __future__ import annotations

import torch
from torch import nn

from segforge.networks.cpu_inference import instance_norm_
from segforge.networks.layers import LayerSpec
from segforge.networks.winograd import conv3d


class ConvNormAct(nn.Sequential):
    """conv -> [channel dropout] -> norm -> [nonlin], the unit of nnU-Net's U-Nets."""

    def __init__(
        self,
        spec: LayerSpec,
        in_ch: int,
        out_ch: int,
        kernel: list[int],
        stride: list[int] | int = 1,
        *,
        dropout: bool = True,
        nonlin: bool = True,
        bias: bool | None = None,
    ) -> None:
        super().__init__()
        self.conv = spec.conv(in_ch, out_ch, kernel, stride, bias=bias)
        drop = spec.dropout_layer() if dropout else None
        if drop is not None:
            self.dropout = drop
        self.norm = spec.norm_layer(out_ch)
        if nonlin:
            self.nonlin = spec.nonlin_layer()
        self.out_channels = out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """As the Sequential; at inference the conv may run by Winograd (networks.winograd), the norm in place."""
        if self.training or self.norm._forward_hooks or self.norm._forward_pre_hooks:
            return super().forward(x)
        x = instance_norm_(self.norm, conv3d(self.conv, x))
        return self.nonlin(x) if hasattr(self, "nonlin") else x


class StackedConvs(nn.Sequential):
    """``n`` ConvNormAct units; only the first one strides (nnU-Net's downsampling by strided conv)."""

    def __init__(
        self, spec: LayerSpec, n: int, in_ch: int, out_ch: int, kernel: list[int], stride: list[int] | int = 1
    ) -> None:
        super().__init__(
            *[ConvNormAct(spec, in_ch if i == 0 else out_ch, out_ch, kernel, stride if i == 0 else 1) for i in range(n)]
        )
        self.out_channels = out_ch


class BasicResidualBlock(nn.Module):
    """ResNet-D basic block: two convs on the main path; the skip average-pools before its 1x1 projection.

    The second conv has no non-linearity; it is applied after the addition (as in ResNet). Its
    norm is the one :func:`zero_init_residual_norms` zeroes so each block starts as identity.
    """

    def __init__(self, spec: LayerSpec, in_ch: int, out_ch: int, kernel: list[int], stride: list[int]) -> None:
        super().__init__()
        self.conv1 = ConvNormAct(spec, in_ch, out_ch, kernel, stride)
        self.conv2 = ConvNormAct(spec, out_ch, out_ch, kernel, 1, dropout=False, nonlin=False)
        self.nonlin = spec.nonlin_layer()
        skip: list[nn.Module] = []
        if any(s != 1 for s in stride):
            skip.append(spec.avg_pool(stride))
        if in_ch != out_ch:
            skip.append(ConvNormAct(spec, in_ch, out_ch, [1] * spec.dims, 1, dropout=False, nonlin=False, bias=False))
        self.skip = nn.Sequential(*skip)  # empty Sequential is the identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        out += self.skip(x)  # in place, as nnU-Net: the norm before it does not keep its output for backward
        return self.nonlin(out)


class StackedResidualBlocks(nn.Sequential):
    """``n`` basic residual blocks; only the first one strides."""

    def __init__(self, spec: LayerSpec, n: int, in_ch: int, out_ch: int, kernel: list[int], stride: list[int]) -> None:
        ones = [1] * spec.dims
        super().__init__(
            *[
                BasicResidualBlock(spec, in_ch if i == 0 else out_ch, out_ch, kernel, stride if i == 0 else ones)
                for i in range(n)
            ]
        )
        self.out_channels = out_ch


def he_init(module: nn.Module, neg_slope: float = 1e-2) -> None:
    """nnU-Net's weight init: kaiming-normal (a=neg_slope) for (transposed) convs, zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
            nn.init.kaiming_normal_(m.weight, a=neg_slope)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def zero_init_residual_norms(module: nn.Module) -> None:
    """Zero the last norm's affine params in every residual block (nnU-Net's ResEnc init)."""
    for m in module.modules():
        if isinstance(m, BasicResidualBlock):
            norm = m.conv2.norm
            if getattr(norm, "weight", None) is not None:
                nn.init.zeros_(norm.weight)
            if getattr(norm, "bias", None) is not None:
                nn.init.zeros_(norm.bias)
