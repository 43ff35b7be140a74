"""Foreground location sampling: nnU-Net's count rule, seeded, coordinates inside their class."""

from __future__ import annotations

import math

import numpy as np

from segforge.preprocessing.class_locations import foreground_labels, sample_class_locations


def test_foreground_labels_skip_background_and_ignore() -> None:
    assert foreground_labels({"background": 0, "b": 2, "a": 1, "ignore": 3}) == [1, 2]


def test_counts_coordinates_and_determinism() -> None:
    seg = np.zeros((20, 30, 40), dtype=np.int8)
    seg[2:12, 5:25, 10:35] = 1  # 5000 voxels
    seg[15:17, 0:5, 0:4] = 2  # 40 voxels
    locs = sample_class_locations(seg, [1, 2, 3], max_samples=10, min_fraction=0.01)
    assert locs[1].shape == (math.ceil(5000 * 0.01), 3)  # at least 1% of the class
    assert locs[2].shape == (10, 3)  # capped at max_samples
    assert locs[3].shape == (0, 3)  # absent class: empty
    for label in (1, 2):
        assert locs[label].dtype == np.int32
        assert (seg[tuple(locs[label].T)] == label).all()
        assert len({tuple(c) for c in locs[label]}) == len(locs[label])  # without replacement
    again = sample_class_locations(seg, [1, 2, 3], max_samples=10, min_fraction=0.01)
    assert all(np.array_equal(locs[k], again[k]) for k in locs)


def test_small_class_is_taken_whole_and_absent_class_draws_nothing() -> None:
    seg = np.zeros((10, 10), dtype=np.int8)
    seg[1, 1:4] = 1
    seg[5:8, 5:8] = 2
    full = sample_class_locations(seg, [1, 2])
    assert sorted(map(tuple, full[1])) == [(1, 1), (1, 2), (1, 3)]
    with_absent = sample_class_locations(seg, [1, 5, 2])  # an absent class must not shift the RNG stream
    np.testing.assert_array_equal(full[2], with_absent[2])
