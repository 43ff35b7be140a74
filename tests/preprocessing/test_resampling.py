"""Resampling matches nnU-Net v2's skimage-based resampling, decides separate-z like it, keeps labels."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from segforge.preprocessing.resampling import (
    compute_new_shape,
    resample_seg,
    resample_to_shape,
    resize_labels,
    separate_z_axis,
)

skimage_transform = pytest.importorskip("skimage.transform")
bg_utils = pytest.importorskip("batchgenerators.augmentations.utils")

#: float32 evaluation vs nnU-Net's float64: relative to the data's value range
DATA_RTOL = 2e-6
#: batchgenerators >= 0.25.5 resizes labels by argmax with a nearest-neighbour tie-break
BG_ARGMAX = hasattr(bg_utils, "_resample_seg_by_argmax")
SEG_MODE = "argmax" if BG_ARGMAX else "threshold"


def reference(data: np.ndarray, new_shape, is_seg: bool, axis: int | None, order: int, order_z: int) -> np.ndarray:
    """nnU-Net v2's resample_data_or_seg, re-stated with skimage/batchgenerators/map_coordinates in float64."""
    if is_seg:

        def resize(x, shape):
            return bg_utils.resize_segmentation(x, shape, order)
    else:

        def resize(x, shape):
            return skimage_transform.resize(x, shape, order, mode="edge", anti_aliasing=False)

    new_shape = tuple(new_shape)
    out = np.zeros((data.shape[0], *new_shape), dtype=data.dtype)
    for c, channel in enumerate(data.astype(np.float64)):
        if axis is None:
            out[c] = resize(channel, new_shape)
            continue
        in_plane = [s for a, s in enumerate(new_shape) if a != axis]
        stacked = np.stack([resize(s, in_plane) for s in np.moveaxis(channel, axis, 0)], axis=axis)
        if stacked.shape[axis] == new_shape[axis]:
            out[c] = stacked
            continue
        grid = np.mgrid[tuple(slice(0, n) for n in new_shape)].astype(np.float64)
        for a in range(3):
            grid[a] = stacked.shape[a] / new_shape[a] * (grid[a] + 0.5) - 0.5
        if not is_seg or order_z == 0:
            out[c] = ndimage.map_coordinates(stacked, grid, order=order_z, mode="nearest")
        else:
            for label in np.unique(stacked):
                hit = np.round(
                    ndimage.map_coordinates((stacked == label).astype(float), grid, order=order_z, mode="nearest")
                )
                out[c][hit > 0.5] = label
    return out


def smooth_labels(shape, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (ndimage.uniform_filter(rng.normal(size=shape), 3) * 8).round().clip(-1, 3).astype(np.int8)


CASES = [  # old shape, new shape, separate axis
    ((9, 17, 13), (14, 25, 20), None),
    ((9, 17, 13), (5, 8, 30), None),
    ((16, 24, 20), (8, 12, 10), None),  # exact 2x: label ties everywhere on boundaries
    ((6, 20, 22), (15, 26, 28), 0),
    ((20, 6, 22), (26, 15, 28), 1),
    ((16, 24, 20), (32, 12, 10), 0),
    ((6, 20, 22), (6, 13, 11), 0),
]


def _spacings(axis: int | None) -> list[float]:
    spacing = [1.0, 1.0, 1.0]
    if axis is not None:
        spacing[axis] = 5.0  # anisotropic: separate along this axis
    return spacing


@pytest.mark.parametrize(("old", "new", "axis"), CASES)
@pytest.mark.parametrize(("order", "order_z"), [(3, 0), (1, 0), (0, 0), (3, 1)])
def test_data_matches_skimage_reference(old, new, axis, order, order_z) -> None:
    data = (np.random.default_rng(0).normal(size=(2, *old)) * 100).astype(np.float32)
    spacing = _spacings(axis)
    ours = resample_to_shape(data, new, spacing, spacing, order=order, order_z=order_z, force_separate_z=None)
    ref = reference(data, new, False, axis, order, order_z)
    assert ours.dtype == np.float32 and ours.shape == (2, *new)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=DATA_RTOL * np.ptp(data))


@pytest.mark.parametrize(("old", "new", "axis"), CASES)
@pytest.mark.parametrize(("order", "order_z"), [(1, 0), (0, 0), (3, 0), (1, 1)])
def test_seg_matches_batchgenerators_reference(old, new, axis, order, order_z) -> None:
    seg = smooth_labels(old, seed=sum(old))[None]
    spacing = _spacings(axis)
    ours = resample_to_shape(seg, new, spacing, spacing, is_seg=True, order=order, order_z=order_z, seg_mode=SEG_MODE)
    ref = reference(seg, new, True, axis, order, order_z)
    assert ours.dtype == np.int8
    np.testing.assert_array_equal(ours, ref)


def test_threshold_mode_is_old_batchgenerators_rule() -> None:
    seg = np.array([[0, 0, 1, 1, 2, 2, 2, 0]], dtype=np.int8)
    # 2x downsampling samples exactly between neighbours: each pair scores 0.5/0.5
    assert resize_labels(seg, (1, 4), 1, "threshold").tolist() == [[0, 1, 2, 2]]
    # argmax gives each tie to the nearest neighbour (scipy rounds x.5 up: the right-hand voxel)
    assert resize_labels(seg, (1, 4), 1, "argmax").tolist() == [[0, 1, 2, 0]]


def test_compute_new_shape_rounds_like_nnunet() -> None:
    assert compute_new_shape((10, 20, 30), (5.0, 0.8, 0.8), (2.5, 0.8, 0.8)) == (20, 20, 30)
    assert compute_new_shape((11, 20, 30), (3.0, 1.0, 1.0), (2.0, 1.5, 0.7)) == (16, 13, 43)
    with pytest.raises(ValueError, match="differ in length"):
        compute_new_shape((10, 20), (1.0, 1.0, 1.0), (1.0, 1.0, 1.0))


@pytest.mark.parametrize(
    ("current", "new", "force", "expected"),
    [
        ((5.0, 0.8, 0.8), (2.5, 0.8, 0.8), None, 0),  # source anisotropic: its z axis
        ((0.8, 0.8, 5.0), (0.8, 0.8, 2.5), None, 2),
        ((1.0, 1.0, 1.0), (1.0, 1.0, 4.0), None, 2),  # only the target is anisotropic
        ((1.0, 1.0, 1.0), (1.0, 1.0, 3.0), None, None),  # ratio 3 is not > 3
        ((1.0, 1.0, 1.0), (2.0, 2.0, 2.0), None, None),
        ((0.24, 1.25, 1.25), (0.24, 1.25, 1.25), None, None),  # two axes share the largest spacing
        ((1.0, 1.0, 2.0), (1.0, 1.0, 2.0), True, 2),  # forced: the source's lowres axis
        ((5.0, 0.8, 0.8), (2.5, 0.8, 0.8), False, None),
        ((1.0, 1.0, 1.0), (1.0, 1.0, 1.0), True, None),  # forced but ambiguous
    ],
)
def test_separate_z_decision(current, new, force, expected) -> None:
    assert separate_z_axis(current, new, force) == expected


def test_no_resampling_returns_input_unchanged() -> None:
    data = np.ones((1, 4, 5, 6), dtype=np.float32)
    assert resample_to_shape(data, (4, 5, 6), (1, 1, 1), (2, 2, 2)) is data


def test_seg_keeps_labels_and_never_invents_between_values() -> None:
    seg = np.zeros((1, 8, 8, 8), dtype=np.int8)
    seg[0, 2:6, 2:6, 2:4] = 2  # 0 next to 2: linear interpolation of values would create 1s
    seg[0, 0:2, :, :] = -1
    for new in [(13, 13, 13), (5, 6, 7), (16, 8, 4)]:
        out = resample_to_shape(seg, new, (1, 1, 1), (1, 1, 1), is_seg=True, order=1)
        assert out.shape == (1, *new) and out.dtype == np.int8
        assert set(np.unique(out)) == {-1, 0, 2}


def test_anisotropic_ct_shape_and_separate_z(make_conf) -> None:
    conf = make_conf("3d_fullres", [2.5, 0.8, 0.8])
    seg = np.zeros((1, 10, 24, 24), dtype=np.int8)
    seg[0, 3:7, 8:16, 8:16] = 1
    new = compute_new_shape(seg.shape[1:], (5.0, 0.8, 0.8), conf.spacing)
    assert new == (20, 24, 24)
    out = resample_seg(seg, new, (5.0, 0.8, 0.8), conf.spacing, conf.resampling)
    # order_z 0 along z: each source slice becomes exactly two output slices
    np.testing.assert_array_equal(out[0], np.repeat(seg[0], 2, axis=0))


def test_channels_are_resampled_independently() -> None:
    """Export maps C-channel probabilities back: each channel must equal its single-channel result."""
    probs = np.random.default_rng(3).random((3, 6, 10, 12)).astype(np.float32)
    together = resample_to_shape(probs, (15, 8, 9), (3.0, 0.7, 0.7), (1.2, 0.9, 0.9))
    for c in range(3):
        alone = resample_to_shape(probs[c : c + 1], (15, 8, 9), (3.0, 0.7, 0.7), (1.2, 0.9, 0.9))
        np.testing.assert_array_equal(together[c], alone[0])
    assert together.min() >= probs.min() and together.max() <= probs.max()  # clipped like skimage
