"""Largest-connected-component removal on hand-made label maps."""

from __future__ import annotations

import numpy as np

from segforge.postprocessing.connected_components import keep_largest_component, largest_component


def _two_blobs() -> np.ndarray:
    seg = np.zeros((4, 8, 8), dtype=np.uint8)
    seg[0:2, 0:3, 0:3] = 1  # 18 voxels
    seg[3, 6:8, 6:8] = 1  # 4 voxels, not face-connected to the first
    return seg


def test_largest_component_keeps_the_bigger_blob():
    mask = _two_blobs() == 1
    kept = largest_component(mask)
    assert int(kept.sum()) == 18 and kept[0, 0, 0] and not kept[3, 7, 7]


def test_only_face_neighbours_connect():
    mask = np.zeros((3, 3, 3), dtype=bool)
    mask[0, 0, 0] = mask[1, 1, 1] = True  # corner neighbours: two components of one voxel each
    assert int(largest_component(mask).sum()) == 1


def test_empty_mask_and_empty_labels_change_nothing():
    assert not largest_component(np.zeros((3, 4), dtype=bool)).any()
    seg = _two_blobs()
    out = keep_largest_component(seg, [2])
    assert np.array_equal(out, seg) and out is not seg


def test_removed_voxels_become_background_and_input_is_untouched():
    seg = _two_blobs()
    before = seg.copy()
    out = keep_largest_component(seg, [1])
    assert np.array_equal(seg, before)
    assert int((out == 1).sum()) == 18 and out[3, 7, 7] == 0 and out.dtype == seg.dtype


def test_per_class_touches_only_that_class():
    seg = _two_blobs()
    seg[0, 5:8, 0] = 2  # class 2: a 3-voxel line ...
    seg[3, 0, 7] = 2  # ... and a lone voxel
    out = keep_largest_component(seg, [2])
    assert int((out == 2).sum()) == 3 and out[3, 0, 7] == 0
    assert np.array_equal(out == 1, seg == 1)  # class 1's small blob stays


def test_labels_together_form_one_region():
    seg = _two_blobs()
    seg[2, 0:3, 0:3] = 2  # touches the big class-1 blob: one foreground component of 27 voxels
    seg[3, 0, 7] = 2  # a separate class-2 voxel
    out = keep_largest_component(seg, [1, 2])
    assert int((out == 1).sum()) == 18 and int((out == 2).sum()) == 9
    assert out[3, 7, 7] == 0 and out[3, 0, 7] == 0


def test_works_in_2d():
    seg = np.zeros((6, 6), dtype=np.int16)
    seg[0:3, 0:3] = 1
    seg[5, 5] = 1
    out = keep_largest_component(seg, [1])
    assert int((out == 1).sum()) == 9 and out[5, 5] == 0
