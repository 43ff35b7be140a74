"""U-Net encoders. A decoder takes everything it needs (layer spec, channels, strides, kernels) from them.

Stage ``s`` of an encoder downsamples its input by ``strides[s]`` with a strided convolution
(nnU-Net v2: no pooling layers) and outputs ``features[s]`` channels; ``strides[0]`` is
normally all ones. ``forward`` returns every stage's output (the skips), highest resolution
first, the bottleneck last.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from segforge.networks.blocks import StackedConvs, StackedResidualBlocks
from segforge.networks.layers import LayerSpec


class Encoder(nn.Module):
    """Common part: stores the topology the decoder mirrors and runs the stages."""

    def __init__(
        self,
        spec: LayerSpec,
        features: Sequence[int],
        kernel_sizes: Sequence[Sequence[int]],
        strides: Sequence[Sequence[int]],
    ) -> None:
        super().__init__()
        self.spec = spec
        self.output_channels = [int(f) for f in features]
        self.kernel_sizes = [list(k) for k in kernel_sizes]
        self.strides = [list(s) for s in strides]
        self.stem: nn.Module = nn.Identity()
        self.stages = nn.ModuleList()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        skips = []
        for stage in self.stages:
            x = stage(x)
            skips.append(x)
        return skips


class PlainConvEncoder(Encoder):
    """nnU-Net's PlainConvEncoder: ``n_convs[s]`` conv-norm-nonlin units per stage."""

    def __init__(
        self,
        spec: LayerSpec,
        in_channels: int,
        features: Sequence[int],
        kernel_sizes: Sequence[Sequence[int]],
        strides: Sequence[Sequence[int]],
        n_convs: Sequence[int],
    ) -> None:
        super().__init__(spec, features, kernel_sizes, strides)
        ch = in_channels
        for s, out_ch in enumerate(self.output_channels):
            self.stages.append(StackedConvs(spec, n_convs[s], ch, out_ch, self.kernel_sizes[s], self.strides[s]))
            ch = out_ch


class ResidualEncoder(Encoder):
    """nnU-Net's ResidualEncoder: a one-conv stem (no stride) then ``n_blocks[s]`` residual blocks per stage."""

    def __init__(
        self,
        spec: LayerSpec,
        in_channels: int,
        features: Sequence[int],
        kernel_sizes: Sequence[Sequence[int]],
        strides: Sequence[Sequence[int]],
        n_blocks: Sequence[int],
        stem_channels: int | None = None,
    ) -> None:
        super().__init__(spec, features, kernel_sizes, strides)
        stem_ch = stem_channels or self.output_channels[0]
        self.stem = StackedConvs(spec, 1, in_channels, stem_ch, self.kernel_sizes[0], 1)
        ch = stem_ch
        for s, out_ch in enumerate(self.output_channels):
            self.stages.append(
                StackedResidualBlocks(spec, n_blocks[s], ch, out_ch, self.kernel_sizes[s], self.strides[s])
            )
            ch = out_ch
