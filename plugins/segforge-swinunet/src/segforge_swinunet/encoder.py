"""The Swin encoder: patch embedding, Swin stages and 2x patch merging between them.

Stage ``i`` works on ``embed_dim * 2^i`` channels at ``input / (patch_size * 2^i)`` per
axis. The encoder returns every stage's (layer-normed) output channels-first, so the
decoder can treat them like a CNN encoder's skips.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from segforge_swinunet.attention import SwinStage
from segforge_swinunet.params import SwinUNetParams


def conv_nd(dims: int) -> type[nn.Module]:
    return nn.Conv3d if dims == 3 else nn.Conv2d


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.movedim(1, -1)


def to_channels_first(x: torch.Tensor) -> torch.Tensor:
    return x.movedim(-1, 1)


class PatchEmbed(nn.Module):
    """Non-overlapping patches of ``patch_size`` voxels -> ``embed_dim`` tokens (a strided conv), then LayerNorm."""

    def __init__(self, dims: int, in_channels: int, embed_dim: int, patch_size: Sequence[int]) -> None:
        super().__init__()
        self.proj = conv_nd(dims)(in_channels, embed_dim, tuple(patch_size), tuple(patch_size))
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(to_channels_last(self.proj(x)))


class PatchMerging(nn.Module):
    """Halve every axis: concatenate each 2x2(x2) neighbourhood's tokens, LayerNorm, project to 2x channels."""

    def __init__(self, dims: int, dim: int) -> None:
        super().__init__()
        self.dims = dims
        self.norm = nn.LayerNorm(2**dims * dim)
        self.reduction = nn.Linear(2**dims * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, *resolution, channels = x.shape
        split = [batch]
        for edge in resolution:
            split += [edge // 2, 2]
        # [B, R0/2, 2, R1/2, 2, ..., C] -> [B, R0/2, R1/2, ..., 2, 2, ..., C] -> neighbours into channels
        order = [0, *(1 + 2 * i for i in range(self.dims)), *(2 + 2 * i for i in range(self.dims)), 2 * self.dims + 1]
        x = x.reshape(*split, channels).permute(order)
        x = x.reshape(batch, *(edge // 2 for edge in resolution), 2**self.dims * channels)
        return self.reduction(self.norm(x))


class SwinEncoder(nn.Module):
    """Patch embedding and ``n_stages`` Swin stages; ``forward`` returns each stage's output channels-first."""

    def __init__(self, params: SwinUNetParams, in_channels: int) -> None:
        super().__init__()
        dims, embed = params.dims, params.embed_dim
        self.channels = [embed * 2**i for i in range(params.n_stages)]
        self.patch_embed = PatchEmbed(dims, in_channels, embed, params.patch_size)
        total = sum(params.depths)
        rates = [params.drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        self.stages = nn.ModuleList()
        self.merges = nn.ModuleList()
        self.norms = nn.ModuleList()
        first = 0
        for stage, (depth, heads) in enumerate(zip(params.depths, params.num_heads, strict=True)):
            dim = self.channels[stage]
            drop = rates[first : first + depth]
            self.stages.append(SwinStage(dim, depth, heads, params.window_size, params.mlp_ratio, drop))
            self.norms.append(nn.LayerNorm(dim))
            if stage < params.n_stages - 1:
                self.merges.append(PatchMerging(dims, dim))
            first += depth

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        tokens = self.patch_embed(x)
        skips = []
        for stage, (block, norm) in enumerate(zip(self.stages, self.norms, strict=True)):
            tokens = block(tokens)
            skips.append(to_channels_first(norm(tokens)))
            if stage < len(self.merges):
                tokens = self.merges[stage](tokens)
        return skips
