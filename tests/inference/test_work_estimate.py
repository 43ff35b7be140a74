"""The tile evaluations a run will do, counted from headers the way the sliding window lays tiles."""

from __future__ import annotations

from segforge.inference.tiling import tile_starts
from segforge.inference.work_estimate import resampled_shape, tiles_for


def test_resampled_shape_follows_the_plans_transpose_and_spacing():
    assert resampled_shape((30, 100, 120), (3.0, 1.0, 1.0), (1.5, 2.0, 2.0), [0, 1, 2]) == (60, 50, 60)
    assert resampled_shape((30, 100, 120), (3.0, 1.0, 1.0), (1.0, 1.0, 1.5), [1, 2, 0]) == (100, 120, 60)
    # a 2d plan keeps the first (sliced) axis as is
    assert resampled_shape((30, 100, 120), (3.0, 1.0, 1.0), (2.0, 2.0), [0, 1, 2]) == (30, 50, 60)


def test_tile_count_matches_the_sliding_window():
    assert tiles_for((60, 50, 60), (40, 40, 40), 0.5) == len(list(tile_starts((60, 50, 60), (40, 40, 40), 0.5)))
    assert tiles_for((20, 30, 30), (40, 40, 40), 0.5) == 1  # padded up to one patch
    assert tiles_for((30, 50, 60), (40, 40), 0.5) == 30 * len(list(tile_starts((50, 60), (40, 40), 0.5)))
