"""Cascade building blocks: next-stage files, one-hot channels, the stacked dataset and augmentation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from segforge.data.augmentation import AugmentationParams, plan_augmentation
from segforge.data.cascade import CascadeAugmentation, StackedChannels, random_binary_operators
from segforge.data.next_stage import (
    labels_from_one_hot,
    next_stage_folder,
    one_hot,
    read_next_stage,
    write_next_stage,
)
from segforge.errors import ConfigError
from segforge.inference.cascade import lowres_folds, lowres_model_dir


def test_next_stage_files_round_trip_as_uint8_npz_with_a_sidecar(tmp_path):
    folder = next_stage_folder(tmp_path / "run", "3d_cascade_fullres")
    assert folder == tmp_path / "run" / "predicted_next_stage" / "3d_cascade_fullres"
    seg = np.array([[[0, 1], [2, 1]]], dtype=np.int64)
    write_next_stage(folder, "c1", seg, {"fold": "2"})
    back = read_next_stage(folder, "c1", (1, 2, 2), "train it")
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, seg)
    sidecar = json.loads((folder / "c1.json").read_text())
    assert sidecar["shape"] == [1, 2, 2] and sidecar["fold"] == "2" and sidecar["dtype"] == "uint8"
    with np.load(folder / "c1.npz", allow_pickle=False) as archive:
        assert list(archive.keys()) == ["seg"]


def test_reading_a_missing_or_misshaped_next_stage_file_is_a_config_error_with_the_hint(tmp_path):
    with pytest.raises(ConfigError, match="no previous-stage prediction for case 'c9'") as exc:
        read_next_stage(tmp_path, "c9", (2, 2), "Train 3d_lowres fold 3 first")
    assert exc.value.hint == "Train 3d_lowres fold 3 first"
    write_next_stage(tmp_path, "c1", np.zeros((2, 3), dtype=np.uint8), {})
    with pytest.raises(ConfigError, match=r"shape \[2, 3\] differs from the preprocessed case \(\[2, 2\]\)"):
        read_next_stage(tmp_path, "c1", (2, 2), "Train it")


def test_one_hot_and_back():
    seg = np.array([[0, 1, 3], [3, 0, 1]])
    channels = one_hot(seg, [1, 3])
    assert channels.dtype == np.float32 and channels.shape == (2, 2, 3)
    np.testing.assert_array_equal(channels[0], [[0, 1, 0], [0, 0, 1]])
    np.testing.assert_array_equal(channels[1], [[0, 0, 1], [1, 0, 0]])
    np.testing.assert_array_equal(labels_from_one_hot(channels, [1, 3]), seg)


def test_stacked_channels_slice_like_the_concatenated_array():
    rng = np.random.default_rng(0)
    image = rng.normal(size=(2, 4, 5, 6)).astype(np.float32)
    previous = rng.integers(0, 3, size=(4, 5, 6))
    stacked = StackedChannels(image, previous, [1, 2])
    full = np.concatenate([image, one_hot(previous, [1, 2])])
    assert stacked.shape == (4, 4, 5, 6) and stacked.ndim == 4
    index = (slice(None), slice(1, 3), slice(0, 5), slice(2, 4))
    np.testing.assert_array_equal(stacked[index], full[index])
    np.testing.assert_array_equal(np.asarray(stacked), full)


def _cascade_sample(shape=(8, 10, 12)):
    rng = np.random.default_rng(1)
    seg = np.zeros((1, *shape), dtype=np.int16)
    seg[0, 2:6, 3:8, 4:10] = 1
    previous = np.zeros(shape, dtype=np.int16)
    previous[1:7, 2:9, 3:11] = 2
    image = rng.normal(size=(1, *shape)).astype(np.float32)
    return np.concatenate([image, one_hot(previous, [1, 2])]), seg, previous


def test_cascade_augmentation_mirrors_the_lowres_channels_with_the_label_and_leaves_their_values_binary():
    data, seg, previous = _cascade_sample()
    params = AugmentationParams(p_rot=0, p_scale=0, p_noise=1, p_brightness=1, p_gamma=0, p_gamma_inverted=0,
                                p_blur=0, p_contrast=0, p_lowres=0, p_mirror_per_axis=1.0)  # fmt: skip
    plan = plan_augmentation(seg.shape[1:], params)
    aug = CascadeAugmentation(plan, params, [], [1, 2], p_binary_operator=0.0)
    out, out_seg = aug(data, seg, np.random.default_rng(3))
    assert out.shape == data.shape and out_seg.shape == seg.shape
    flipped = previous[::-1, ::-1, ::-1]
    np.testing.assert_array_equal(out[1:], one_hot(flipped, [1, 2]))  # untouched by noise / brightness
    np.testing.assert_array_equal(out_seg[0], seg[0, ::-1, ::-1, ::-1])
    assert not np.allclose(out[0], data[0, ::-1, ::-1, ::-1])  # the image got the intensity transforms


@pytest.mark.parametrize("patch", [(8, 10, 12), (2, 10, 12)])
def test_cascade_augmentation_rotates_label_and_lowres_channels_alike(patch):
    """Identical label and lowres maps stay identical after rotation/scaling (also in dummy 2D)."""
    data, seg, _ = _cascade_sample(patch)
    data[1:] = one_hot(seg[0], [1, 2])
    params = AugmentationParams(p_rot=1, p_scale=1, p_noise=0, p_blur=0, p_brightness=0, p_contrast=0, p_lowres=0,
                                p_gamma=0, p_gamma_inverted=0, p_mirror_per_axis=0)  # fmt: skip
    plan = plan_augmentation(patch, params)
    assert plan.dummy_2d == (patch[0] == 2)
    aug = CascadeAugmentation(plan, params, [], [1, 2], p_binary_operator=0.0)
    out, out_seg = aug(data, seg, np.random.default_rng(5))
    np.testing.assert_array_equal(labels_from_one_hot(out[1:], [1, 2]), np.maximum(out_seg[0], 0))


def test_random_binary_operators_change_channels_and_keep_them_binary():
    channels = np.zeros((2, 12, 12, 12), dtype=np.float32)
    channels[0, 3:9, 3:9, 3:9] = 1
    channels[1, 5:7, 5:7, 5:7] = 1
    out = random_binary_operators(channels.copy(), np.random.default_rng(0), p_per_sample=1.0)
    assert set(np.unique(out)) <= {0.0, 1.0}
    assert not np.array_equal(out, channels)
    untouched = random_binary_operators(channels.copy(), np.random.default_rng(0), p_per_sample=0.0)
    np.testing.assert_array_equal(untouched, channels)


def test_lowres_model_dir_is_the_sibling_configuration(tmp_path):
    run = tmp_path / "Task1" / "3d_cascade_fullres" / "default__generic_unet__segforgePlans"
    lowres = tmp_path / "Task1" / "3d_lowres" / "default__generic_unet__segforgePlans"
    (lowres / "fold_0").mkdir(parents=True)
    assert lowres_model_dir(run, "3d_cascade_fullres", "3d_lowres") == lowres
    assert lowres_model_dir(run / "fold_0", "3d_cascade_fullres", "3d_lowres") == lowres / "fold_0"
    assert lowres_folds(lowres, ["0"]) == ["0"]
    assert lowres_folds(lowres, ["0", "1"]) is None  # not all there: every trained lowres fold
    from segforge.errors import UsageError

    with pytest.raises(UsageError, match="no 3d_lowres model at"):
        lowres_model_dir(tmp_path / "Task1" / "3d_cascade_fullres" / "other", "3d_cascade_fullres", "3d_lowres")
    with pytest.raises(UsageError, match="no '3d_cascade_fullres' folder in its path") as exc:
        lowres_model_dir(Path("/models/mine"), "3d_cascade_fullres", "3d_lowres")
    assert exc.value.hint == "pass the 3d_lowres segmentations with --lowres-predictions DIR"


def test_open_next_stage_unpacks_once_to_a_memory_mapped_npy_and_again_when_the_npz_changes(tmp_path):
    import os

    from segforge.data.next_stage import open_next_stage

    write_next_stage(tmp_path, "c1", np.ones((3, 4), dtype=np.uint8), {})
    first = open_next_stage(tmp_path, "c1", (3, 4), "hint")
    assert isinstance(first, np.memmap) and (tmp_path / "c1.npy").is_file()
    np.testing.assert_array_equal(first, 1)
    write_next_stage(tmp_path, "c1", np.full((3, 4), 2, dtype=np.uint8), {})
    stamp = (tmp_path / "c1.npy").stat().st_mtime_ns
    os.utime(tmp_path / "c1.npz", ns=(stamp + 10**9, stamp + 10**9))  # the npz is newer than its unpacked copy
    np.testing.assert_array_equal(open_next_stage(tmp_path, "c1", (3, 4), "hint"), 2)


def test_remove_random_component_clears_one_small_component_per_channel():
    from segforge.data.cascade import remove_random_component

    channels = np.zeros((1, 20, 20), dtype=np.float32)
    channels[0, 1:3, 1:3] = 1  # 4 voxels: removable
    channels[0, 10:19, 2:18] = 1  # 144 voxels = 36 % of the patch: kept (> 15 %)
    out = remove_random_component(channels.copy(), np.random.default_rng(0), p_per_sample=1.0)
    assert out[0, 1:3, 1:3].sum() == 0 and out[0, 10:19, 2:18].sum() == 144
    np.testing.assert_array_equal(remove_random_component(channels.copy(), np.random.default_rng(0), 0.0), channels)
