"""Tile positions (nnU-Net's compute_steps_for_sliding_window) and padding, against hand-computed values."""

from __future__ import annotations

import pytest

from segforge.errors import UsageError
from segforge.inference.tiling import compute_steps, padding_for, tile_starts, unpad_slices


@pytest.mark.parametrize(
    ("image", "tile", "step", "expected"),
    [
        ((110,), (64,), 0.5, [[0, 23, 46]]),  # nnU-Net's own example: 3 tiles over 46 free positions
        ((64,), (64,), 0.5, [[0]]),  # image == tile: one tile
        ((128,), (64,), 1.0, [[0, 64]]),  # no overlap
        ((128,), (64,), 0.5, [[0, 32, 64]]),
        ((100,), (64,), 0.25, [[0, 12, 24, 36]]),  # ceil(36 / 16) + 1 = 4 tiles, 36 / 3 = 12 apart
        ((128, 256, 256), (96, 160, 128), 0.5, [[0, 32], [0, 48, 96], [0, 64, 128]]),  # the CT benchmark
        ((65,), (64,), 0.5, [[0, 1]]),
    ],
)
def test_compute_steps_hand_values(image, tile, step, expected):
    assert compute_steps(image, tile, step) == expected


def test_steps_cover_image_and_keep_spacing_below_step():
    for size in range(40, 200, 7):
        steps = compute_steps((size,), (40,), 0.5)[0]
        assert steps[0] == 0 and steps[-1] == size - 40
        assert all(0 < b - a <= 20 for a, b in zip(steps, steps[1:], strict=False))


def test_rounding_is_half_to_even_like_numpy():
    # 3 tiles over 5 free positions: 2.5 rounds to 2 (numpy and Python round half to even)
    assert compute_steps((69,), (64,), 0.04) == [[0, 2, 5]]  # ceil(5 / 2.56) + 1 = 3 tiles: 0, 2.5, 5
    assert compute_steps((69,), (64,), 0.5) == [[0, 5]]
    assert compute_steps((7,), (2,), 1.0) == [[0, 2, 3, 5]]  # 5 / 3 * [0, 1, 2, 3] = 0, 1.67, 3.33, 5


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.5])
def test_step_size_out_of_range_is_a_usage_error(bad):
    with pytest.raises(UsageError, match="step size must be in \\(0, 1\\]"):
        compute_steps((10,), (5,), bad)


def test_image_smaller_than_tile_is_refused():
    with pytest.raises(ValueError, match="pad it first"):
        compute_steps((10, 50), (16, 16), 0.5)


def test_tile_starts_order_last_axis_fastest():
    starts = list(tile_starts((20, 24), (16, 16), 0.5))
    assert starts == [(0, 0), (0, 8), (4, 0), (4, 8)]


def test_tile_starts_2d_patch_on_3d_image_walks_slices():
    starts = list(tile_starts((3, 16, 24), (16, 16), 0.5))
    assert starts == [(0, 0, 0), (0, 0, 8), (1, 0, 0), (1, 0, 8), (2, 0, 0), (2, 0, 8)]


def test_padding_centres_the_image_extra_voxel_after():
    assert padding_for((30, 50, 31), (40, 40, 40)) == [(5, 5), (0, 0), (4, 5)]
    assert padding_for((5, 30, 50), (40, 40)) == [(0, 0), (5, 5), (0, 0)]  # 2D patch: in-plane axes only


def test_unpad_slices_invert_padding():
    pad = padding_for((30, 50, 31), (40, 40, 40))
    padded = [s + a + b for s, (a, b) in zip((30, 50, 31), pad, strict=True)]
    sl = unpad_slices(padded, pad)
    assert [(s.start, s.stop) for s in sl] == [(5, 35), (0, 50), (4, 35)]
