"""Patch sampling: nnU-Net's oversampling rule, bounds, padding, pseudo-3D slices, own RNG only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from segforge_data_cases import coordinate_case, write_synthetic_case

from segforge.data.dataset import PreprocessedDataset
from segforge.data.sampling import PatchSampler, crop_and_pad, forced_foreground_items
from segforge.errors import ConfigError


@pytest.mark.parametrize(
    ("batch", "percent", "forced"),
    [(2, 0.33, [False, True]), (7, 0.33, [False] * 5 + [True] * 2), (9, 0.33, [False] * 6 + [True] * 3),
     (1, 0.33, [False]), (4, 0.0, [False] * 4), (3, 1.0, [True] * 3)],
)  # fmt: skip
def test_forced_foreground_items_follow_nnunet(batch, percent, forced):
    assert forced_foreground_items(batch, percent) == forced


def test_crop_and_pad_reads_inside_and_pads_outside():
    array = np.arange(2 * 4 * 5, dtype=np.float32).reshape(2, 4, 5)
    out = np.empty((2, 3, 3), np.float32)
    crop_and_pad(array, [-1, 3], out, -7)
    expected = np.full((2, 3, 3), -7, np.float32)
    expected[:, 1:, :2] = array[:, 0:2, 3:5]
    np.testing.assert_array_equal(out, expected)
    crop_and_pad(array, [1, 1], out, -7)
    np.testing.assert_array_equal(out, array[:, 1:4, 1:4])
    crop_and_pad(array, [10, 0], out, 5)  # entirely outside
    assert (out == 5).all()


def _coordinate_folder(tmp_path: Path, shape=(10, 12, 9)) -> PreprocessedDataset:
    data, seg = coordinate_case(shape)
    write_synthetic_case(tmp_path, "coords", data, seg, labels=(1,))
    return PreprocessedDataset(tmp_path, ["coords"])


def test_small_case_is_padded_with_zero_and_minus_one(tmp_path: Path):
    ds = _coordinate_folder(tmp_path)
    batch = PatchSampler(ds, 4, (16, 16, 16), oversample_foreground_percent=0).sample(np.random.default_rng(1))
    assert batch.data.shape == (4, 1, 16, 16, 16) and batch.seg.shape == (4, 1, 16, 16, 16)
    assert batch.seg.dtype == np.int16
    for j in range(4):
        inside = batch.data[j, 0] > 0  # every image voxel is >= 1
        assert inside.sum() == 10 * 12 * 9  # the patch covers the whole (smaller) image
        assert (batch.data[j, 0][~inside] == 0).all() and (batch.seg[j, 0][~inside] == -1).all()


def test_random_positions_span_exactly_nnunets_range(tmp_path: Path):
    ds = _coordinate_folder(tmp_path, (20, 12, 9))
    sampler = PatchSampler(ds, 1, (8, 10, 9), (6, 10, 5), oversample_foreground_percent=0)
    rng = np.random.default_rng(0)
    corners = np.array([sampler.lower_corner((20, 12, 9), rng, None) for _ in range(3000)])
    # need_to_pad = sampled - final = (2, 0, 4), ceil(need/2) overhang each side
    assert corners.min(0).tolist() == [-1, 0, -2]
    assert corners.max(0).tolist() == [20 + 1 - 8, 12 - 10, 9 + 2 - 9]


def test_forced_items_always_contain_foreground(synthetic_folder: Path):
    ids = [f"case_{i:03d}" for i in range(8)]
    ds = PreprocessedDataset(synthetic_folder, ids)
    sampler = PatchSampler(ds, 3, (10, 10, 10))
    rng = np.random.default_rng(3)
    forced_fg = random_fg = 0
    for _ in range(150):
        batch = sampler.sample(rng)
        assert batch.forced_foreground == [False, False, True]
        has_fg = (batch.seg > 0).reshape(3, -1).any(1)
        forced_fg += has_fg[2]
        random_fg += has_fg[:2].sum()
    assert forced_fg == 150  # every case has foreground, every forced patch contains some
    assert random_fg < 0.8 * 300  # random patches often miss the tiny objects (otherwise the test is moot)


def test_forced_item_centres_the_chosen_voxel(tmp_path: Path):
    data = np.ones((1, 30, 30, 30), np.float32)
    seg = np.zeros((1, 30, 30, 30), np.int8)
    seg[0, 25, 3, 14] = 2  # a single foreground voxel near two borders
    write_synthetic_case(tmp_path, "one", data, seg, labels=(1, 2))
    ds = PreprocessedDataset(tmp_path, ["one"])
    sampler = PatchSampler(ds, 1, (12, 12, 12), (8, 8, 8), oversample_foreground_percent=1)
    corner = sampler.lower_corner((30, 30, 30), np.random.default_rng(0), ds.class_locations("one"))
    # lower corner = voxel - patch // 2, clamped below at -ceil(need_to_pad / 2) = -2 only (as nnU-Net)
    assert corner == [25 - 6, max(-2, 3 - 6), 14 - 6]
    batch = sampler.sample(np.random.default_rng(0))
    assert batch.seg[0, 0, 6, 5, 6] == 2 and (batch.seg == 2).sum() == 1


def test_2d_patch_on_3d_data_samples_single_slices(tmp_path: Path):
    ds = _coordinate_folder(tmp_path, (6, 20, 18))
    sampler = PatchSampler(ds, 5, (16, 16), oversample_foreground_percent=0.4)
    batch = sampler.sample(np.random.default_rng(2))
    assert batch.data.shape == (5, 1, 16, 16) and batch.seg.shape == (5, 1, 16, 16)
    for j in range(5):
        values = batch.data[j, 0][batch.data[j, 0] > 0]
        assert len(np.unique(values // 10000)) == 1  # one z slice per item


def test_same_generator_state_same_batch_and_global_rng_untouched(synthetic_folder: Path):
    ds = PreprocessedDataset(synthetic_folder, [f"case_{i:03d}" for i in range(8)])
    sampler = PatchSampler(ds, 4, (12, 14, 10))
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a, b = sampler.sample(np.random.default_rng(5)), sampler.sample(np.random.default_rng(5))
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    assert a.keys == b.keys
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.seg, b.seg)
    c = sampler.sample(np.random.default_rng(6))
    assert not np.array_equal(a.data, c.data)


def test_invalid_settings(synthetic_folder: Path):
    ds = PreprocessedDataset(synthetic_folder, ["case_000"])
    with pytest.raises(ConfigError, match="oversample_foreground_percent must be in"):
        PatchSampler(ds, 2, (8, 8, 8), oversample_foreground_percent=1.5)
    with pytest.raises(ConfigError, match="batch size must be >= 1"):
        PatchSampler(ds, 0, (8, 8, 8))
    with pytest.raises(ConfigError, match=r"4D patch \[8, 8, 8, 8\] for 3D preprocessed images"):
        PatchSampler(ds, 2, (8, 8, 8, 8))
