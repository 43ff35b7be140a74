"""Constant input tiles go through the network once per distinct value, and the blended logits do not change."""

from __future__ import annotations

import torch
from torch import nn

from segforge.inference.constant_tiles import ConstantTileCache, constant_keys
from segforge.inference.sliding_window import SlidingWindowPredictor, SlidingWindowSettings


class CountingConv(nn.Module):
    """A 3x3x3 conv (so border padding matters) that counts the tiles it is given."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv3d(2, 3, 3, padding=1)
        self.tiles = 0

    def forward(self, x):
        self.tiles += x.shape[0]
        return self.conv(x)


def _predict(image, reuse, mirror=None, max_batch_voxels=2**20):
    net = CountingConv()
    settings = SlidingWindowSettings(
        (8, 8, 8), precision="fp32", mirror_axes=mirror, reuse_constant_tiles=reuse, max_batch_voxels=max_batch_voxels
    )
    predictor = SlidingWindowPredictor(net, settings)
    out = predictor.predict_logits(image)
    return out.clone(), net.tiles, predictor.constant_tiles.stats


def _image_with_air():
    """Channel values: 'air' (-1, 0.5) over most of the volume, a random 'body' in one corner."""
    image = torch.empty(2, 16, 24, 24)
    image[0], image[1] = -1.0, 0.5
    image[:, :8, :8, :8] = torch.randn(2, 8, 8, 8)
    return image


def test_reuse_gives_the_same_logits_with_fewer_tiles_through_the_network():
    image = _image_with_air()
    plain, plain_tiles, _ = _predict(image, reuse=False)
    reused, reused_tiles, stats = _predict(image, reuse=True)
    torch.testing.assert_close(reused, plain, rtol=1e-6, atol=1e-6)
    assert stats.predicted + stats.reused == plain_tiles == 75  # 3 x 5 x 5 tiles at step 0.5
    assert stats.reused > 40 and reused_tiles == stats.predicted < plain_tiles


def test_reuse_holds_with_mirroring_and_small_batches():
    image = _image_with_air()
    plain, _, _ = _predict(image, reuse=False, mirror=(0, 1, 2), max_batch_voxels=512)
    reused, _, stats = _predict(image, reuse=True, mirror=(0, 1, 2), max_batch_voxels=512)
    torch.testing.assert_close(reused, plain, rtol=1e-6, atol=1e-6)
    assert stats.reused > 40


def test_each_distinct_constant_value_is_predicted_once():
    image = torch.zeros(2, 8, 8, 32)
    image[:, :, :, 16:] = 3.0  # two constant halves: tiles at x = 0, 4, 8 | 16, 20, 24; 12 straddles
    _, tiles, stats = _predict(image, reuse=True)
    assert (tiles, stats.reused) == (3, 4)  # zeros once, threes once, the straddling tile 12 once


def test_constant_keys_need_every_channel_constant():
    x = torch.zeros(3, 2, 4, 4, 4)
    x[1, 1, 0, 0, 0] = 1.0  # one voxel of one channel differs
    x[2, 0] = 5.0
    assert constant_keys(x) == [(0.0, 0.0), None, (5.0, 0.0)]


def test_reused_logits_are_copies_the_caller_may_scale():
    cache = ConstantTileCache()
    x = torch.zeros(2, 1, 4, 4, 4)
    out = cache.predict(x, lambda t: torch.ones(len(t), 2, 4, 4, 4))
    out[0].mul_(5)
    again = cache.predict(x[:1], lambda t: torch.full((len(t), 2, 4, 4, 4), 9.0))
    assert float(again[0].max()) == 1.0 and cache.stats.reused == 2
