"""The ``swin_unet`` module: a Swin encoder, a convolutional decoder and a full-resolution conv stem.

::

    input ─ stem (2 convs, full res) ─────────────────────────────────────┐
      └─ patch embed (/p) ─ stage 0 ─ merge ─ stage 1 ─ ... ─ stage n-1    │
                              │                 │               │         │
                 level 0 ◄─ up ◄── level 1 ◄─ up ◄─ ... ◄── up ─┘         │
                    └─ up (x p) ─ concat ◄─────────────────────────────────┘ ─ convs ─ head

Each decoder level upsamples 2x with a transposed conv, concatenates the encoder stage at
that resolution and runs two conv-norm-nonlin units (nnU-Net's decoder). The last level
undoes the patch embedding (transposed conv with kernel = stride = ``patch_size``) and is
joined by the conv stem, whose full-resolution features let thin structures survive the
coarse tokenisation.

Deep supervision follows segforge's builtin U-Nets: with :attr:`SwinUNet.deep_supervision`
``forward`` returns a list of logits, full resolution first, then decoder levels 0 .. n-2
(at ``input / (patch_size * 2^i)``); :attr:`SwinUNet.deep_supervision_scales` lists the
per-axis downsampling factors. All heads always exist, so weights trained with deep
supervision load into a network built without it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from segforge.errors import ConfigError
from segforge_swinunet.encoder import SwinEncoder, conv_nd
from segforge_swinunet.params import SwinUNetParams, divisors


def stem_channels(embed_dim: int) -> int:
    """Channels at full resolution: half the embedding width (the full-resolution maps are the largest)."""
    return max(4, embed_dim // 2)


class ConvBlock(nn.Sequential):
    """Two 3x3(x3) conv - instance norm - leaky ReLU units (nnU-Net's decoder block)."""

    def __init__(self, dims: int, in_channels: int, out_channels: int) -> None:
        norm = nn.InstanceNorm3d if dims == 3 else nn.InstanceNorm2d
        layers: list[nn.Module] = []
        for cin in (in_channels, out_channels):
            layers += [
                conv_nd(dims)(cin, out_channels, 3, 1, 1),
                norm(out_channels, eps=1e-5, affine=True),
                nn.LeakyReLU(0.01, inplace=True),
            ]
        super().__init__(*layers)


class UpLevel(nn.Module):
    """Upsample by ``factor`` (transposed conv), concatenate the skip, run a :class:`ConvBlock`."""

    def __init__(self, dims: int, in_channels: int, out_channels: int, factor: Sequence[int]) -> None:
        super().__init__()
        transposed = nn.ConvTranspose3d if dims == 3 else nn.ConvTranspose2d
        self.up = transposed(in_channels, out_channels, tuple(factor), tuple(factor))
        self.block = ConvBlock(dims, 2 * out_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.block(torch.cat((self.up(x), skip), dim=1))


class SwinUNet(nn.Module):
    """Swin U-Net; ``forward`` returns logits, or a list of them when :attr:`deep_supervision` is on."""

    def __init__(self, params: SwinUNetParams, in_channels: int, num_classes: int, deep_supervision: bool) -> None:
        super().__init__()
        dims = params.dims
        self.num_classes = num_classes
        self.deep_supervision = deep_supervision
        self.divisors = list(divisors(params))
        self.patch_size = list(params.patch_size)
        stem = stem_channels(params.embed_dim)
        self.stem = ConvBlock(dims, in_channels, stem)
        self.encoder = SwinEncoder(params, in_channels)
        channels = self.encoder.channels
        # decoder levels n-2 .. 0, each back to the resolution (and width) of that encoder stage
        self.levels = nn.ModuleList(
            UpLevel(dims, channels[i + 1], channels[i], [2] * dims) for i in reversed(range(params.n_stages - 1))
        )
        self.final = UpLevel(dims, channels[0], stem, params.patch_size)
        conv = conv_nd(dims)
        self.heads = nn.ModuleList([conv(stem, num_classes, 1)] + [conv(c, num_classes, 1) for c in channels[:-1]])

    @property
    def deep_supervision_scales(self) -> list[list[int]]:
        """Per-axis downsampling factor of each output, full resolution first (``[1, ..], p, 2p, ..``)."""
        scales = [[1] * len(self.patch_size)]
        for level in range(len(self.heads) - 1):
            scales.append([p * 2**level for p in self.patch_size])
        return scales if self.deep_supervision else scales[:1]

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        self._check_input(x)
        skips = self.encoder(x)
        h = skips[-1]
        per_level: list[torch.Tensor] = []
        for offset, level in enumerate(self.levels):
            h = level(h, skips[-(offset + 2)])
            per_level.append(h)
        full = self.heads[0](self.final(h, self.stem(x)))
        if not self.deep_supervision:
            return full
        # per_level runs from the deepest decoder level up to level 0; outputs go full resolution first
        return [full] + [head(feat) for head, feat in zip(self.heads[1:], reversed(per_level), strict=True)]

    def _check_input(self, x: torch.Tensor) -> None:
        spatial = tuple(x.shape[2:])
        if len(spatial) != len(self.divisors) or any(e % d for e, d in zip(spatial, self.divisors, strict=True)):
            raise ConfigError(
                f"swin_unet input of spatial shape {list(spatial)} is not a multiple of {self.divisors} per axis",
                hint="round the patch with the builder's constraints(params).round_up(patch)",
            )


def initialize(network: SwinUNet) -> None:
    """Transformer parts: truncated normal (std 0.02), zero biases, unit LayerNorm; convs: He (a=0.01)."""
    for module in network.modules():
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
            nn.init.kaiming_normal_(module.weight, a=1e-2)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    for name, param in network.named_parameters():
        if name.endswith("relative_position_bias_table"):
            nn.init.trunc_normal_(param, std=0.02)
