"""The U-Net module: an encoder plus a decoder that mirrors it, with nnU-Net v2's deep supervision.

The decoder has one level per encoder stage except the bottleneck (``n_stages - 1`` levels).
Level ``l`` (computed from the bottleneck upwards) upsamples the level below with a transposed
conv (kernel == stride of the encoder stage it undoes), concatenates the matching skip and runs
``n_convs[l]`` conv-norm-nonlin units; a 1x1 conv turns it into logits. All heads are always
built, so weights trained with deep supervision load into a network without it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from segforge.errors import ConfigError
from segforge.networks.blocks import StackedConvs
from segforge.networks.cpu_inference import upsample_concat
from segforge.networks.encoders import Encoder


class UNetDecoder(nn.Module):
    """Decoder levels built from the encoder's channels, strides and kernels (bottleneck-adjacent first)."""

    def __init__(self, encoder: Encoder, num_classes: int, n_convs: Sequence[int]) -> None:
        super().__init__()
        spec, feats = encoder.spec, encoder.output_channels
        n_levels = len(feats) - 1
        self.stages = nn.ModuleList()
        self.transpconvs = nn.ModuleList()
        self.seg_layers = nn.ModuleList()
        for level in range(n_levels):
            below, skip = feats[n_levels - level], feats[n_levels - level - 1]
            self.transpconvs.append(spec.transposed_conv(below, skip, encoder.strides[n_levels - level]))
            kernel = encoder.kernel_sizes[n_levels - level - 1]
            self.stages.append(StackedConvs(spec, n_convs[level], 2 * skip, skip, kernel, 1))
            self.seg_layers.append(spec.conv(skip, num_classes, [1] * spec.dims, 1, bias=True))

    def forward(self, skips: list[torch.Tensor], deep_supervision: bool) -> list[torch.Tensor]:
        """Logits of every level (``deep_supervision``) or of the last one, highest resolution first.

        Consumes ``skips``: each is dropped from the list once concatenated, so at inference a
        skip's memory is free before the next, larger level runs (not the whole pyramid held
        to the end).
        """
        x = skips.pop()
        outputs = []
        last = len(self.stages) - 1
        for level, (up, stage) in enumerate(zip(self.transpconvs, self.stages, strict=True)):
            x = stage(upsample_concat(up, x, skips.pop()))
            if deep_supervision or level == last:
                outputs.append(self.seg_layers[level](x))
        return outputs[::-1]


class UNet(nn.Module):
    """Encoder + decoder. ``forward`` returns a tensor, or with deep supervision a list of tensors.

    With ``deep_supervision`` the list has ``n_stages - 1`` logits, exactly as nnU-Net v2's
    UNetDecoder: output ``i`` is at the resolution of encoder stage ``i``, i.e. downsampled
    from the input by the cumulative product of ``strides[0..i]`` per axis (output 0 is full
    resolution; the last is the level just above the bottleneck). nnU-Net's trainer gives
    that last output a loss weight of 0, which is the loss's business, not the network's.
    :attr:`deep_supervision_scales` lists these factors for the outputs ``forward`` returns.
    Toggle :attr:`deep_supervision` to switch to a single output for inference.
    """

    def __init__(self, encoder: Encoder, num_classes: int, n_convs_decoder: Sequence[int], deep_supervision: bool):
        super().__init__()
        self.encoder = encoder
        self.decoder = UNetDecoder(encoder, num_classes, n_convs_decoder)
        self.deep_supervision = deep_supervision
        self.num_classes = num_classes
        self.divisors = [math.prod(axis) for axis in zip(*encoder.strides, strict=True)]

    @property
    def deep_supervision_scales(self) -> list[list[int]]:
        """Per-axis downsampling factor of each output relative to the input, full resolution first."""
        scales, current = [], [1] * len(self.divisors)
        for stride in self.encoder.strides[:-1]:
            current = [c * s for c, s in zip(current, stride, strict=True)]
            scales.append(list(current))
        return scales if self.deep_supervision else scales[:1]

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        self._check_input(x)
        outputs = self.decoder(self.encoder(x), self.deep_supervision)
        return outputs if self.deep_supervision else outputs[0]

    def _check_input(self, x: torch.Tensor) -> None:
        spatial = tuple(x.shape[2:])
        if len(spatial) != len(self.divisors) or any(e % d for e, d in zip(spatial, self.divisors, strict=True)):
            raise ConfigError(
                f"U-Net input of spatial shape {list(spatial)} is not a multiple of {self.divisors} per axis",
                hint="round the patch with the builder's constraints(params).round_up(patch)",
            )
