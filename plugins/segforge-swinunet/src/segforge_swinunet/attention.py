"""Swin transformer blocks: window attention with relative position bias, shifted every second block.

Attention is written out (``q @ k^T``, bias, mask, softmax, ``@ v``) rather than calling
``scaled_dot_product_attention``: the softmax is an ``nn.Softmax`` module, so the attention
matrix it returns - the largest tensor a Swin block keeps for the backward pass - is a
module output, and segforge's generic memory estimate (which adds up module outputs on the
meta device) counts it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from segforge_swinunet.windows import (
    bias_table_size,
    relative_position_index,
    shift_sizes,
    shifted_window_mask,
    window_partition,
    window_reverse,
)


class DropPath(nn.Module):
    """Stochastic depth: drop a sample's whole residual branch with probability ``rate`` while training."""

    def __init__(self, rate: float = 0.0) -> None:
        super().__init__()
        self.rate = float(rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.rate == 0.0 or not self.training:
            return x
        keep = 1.0 - self.rate
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class Mlp(nn.Sequential):
    """Linear - GELU - Linear, the feed-forward half of a transformer block."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))


class WindowAttention(nn.Module):
    """Multi-head self-attention inside each window, plus a learned bias per head and relative offset."""

    def __init__(self, dim: int, num_heads: int, window: Sequence[int]) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.window = tuple(window)
        self.tokens = math.prod(window)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.relative_position_bias_table = nn.Parameter(torch.zeros(bias_table_size(window), num_heads))
        # derived from the window alone: not saved in checkpoints
        self.register_buffer("relative_position_index", relative_position_index(window).flatten(), persistent=False)
        self.softmax = nn.Softmax(dim=-1)

    def relative_position_bias(self) -> torch.Tensor:
        """``[heads, N, N]``: the bias each head adds to its attention logits."""
        n = self.tokens
        bias = self.relative_position_bias_table[self.relative_position_index]
        return bias.view(n, n, self.num_heads).permute(2, 0, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: ``[B * n_windows, N, C]``; ``mask``: ``[n_windows, N, N]``, True = not allowed."""
        windows, n, channels = x.shape
        heads = self.num_heads
        q, k, v = self.qkv(x).view(windows, n, 3, heads, channels // heads).permute(2, 0, 3, 1, 4).unbind(0)
        logits = (q * self.scale) @ k.transpose(-2, -1)
        logits = logits + self.relative_position_bias().unsqueeze(0).to(logits.dtype)
        if mask is not None:
            n_windows = mask.shape[0]
            logits = logits.view(windows // n_windows, n_windows, heads, n, n)
            logits = logits.masked_fill(mask[None, :, None], float("-inf")).view(windows, heads, n, n)
        out = (self.softmax(logits) @ v).transpose(1, 2).reshape(windows, n, channels)
        return self.proj(out)


class SwinBlock(nn.Module):
    """Pre-norm transformer block: (shifted) window attention and an MLP, each with a residual."""

    def __init__(
        self, dim: int, num_heads: int, window: Sequence[int], shifted: bool, mlp_ratio: float, drop_path: float
    ) -> None:
        super().__init__()
        self.window = tuple(window)
        self.shifted = shifted
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, num_heads, window)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, max(1, int(dim * mlp_ratio)))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """``x``: ``[B, *resolution, C]``; ``mask`` from :func:`shifted_window_mask` (used by shifted blocks)."""
        resolution = tuple(x.shape[1:-1])
        shift = shift_sizes(resolution, self.window) if self.shifted else (0,) * len(resolution)
        axes = tuple(range(1, len(resolution) + 1))
        h = self.norm1(x)
        if any(shift):
            h = torch.roll(h, shifts=[-s for s in shift], dims=axes)
        h = self.attn(window_partition(h, self.window), mask if any(shift) else None)
        h = window_reverse(h, self.window, resolution)
        if any(shift):
            h = torch.roll(h, shifts=list(shift), dims=axes)
        x = x + self.drop_path(h)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class SwinStage(nn.Module):
    """``depth`` Swin blocks at one resolution, alternating regular and shifted windows."""

    def __init__(
        self, dim: int, depth: int, num_heads: int, window: Sequence[int], mlp_ratio: float, drop_paths: Sequence[float]
    ) -> None:
        super().__init__()
        self.window = tuple(window)
        self.blocks = nn.ModuleList(
            SwinBlock(dim, num_heads, window, i % 2 == 1, mlp_ratio, drop_paths[i]) for i in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        resolution = tuple(x.shape[1:-1])
        shift = shift_sizes(resolution, self.window)
        # one mask per stage and forward: every shifted block at this resolution uses the same one
        mask = (
            shifted_window_mask(resolution, self.window, shift, x.device)
            if len(self.blocks) > 1 and any(shift)
            else None
        )
        for block in self.blocks:
            x = block(x, mask)
        return x
