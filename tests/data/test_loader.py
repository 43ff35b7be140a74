"""Loaders: batch format, -1 -> 0, deep-supervision targets, determinism across epochs and workers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from segforge_data_cases import coordinate_case, write_real_cases, write_synthetic_case

from segforge.data.augmentation import AugmentationParams
from segforge.data.dataset import PreprocessedDataset
from segforge.data.loader import make_train_loader, make_val_loader

IDS = [f"case_{i:03d}" for i in range(8)]
DS = [[1, 1, 1], [2, 2, 2], [4, 4, 4]]


def _assert_same(a: dict, b: dict) -> None:
    assert a["keys"] == b["keys"]
    torch.testing.assert_close(a["data"], b["data"], rtol=0, atol=0)
    targets_a = a["target"] if isinstance(a["target"], list) else [a["target"]]
    targets_b = b["target"] if isinstance(b["target"], list) else [b["target"]]
    for ta, tb in zip(targets_a, targets_b, strict=True):
        torch.testing.assert_close(ta, tb, rtol=0, atol=0)


def test_train_batches_with_deep_supervision(synthetic_folder: Path):
    ds = PreprocessedDataset(synthetic_folder, IDS)
    loader = make_train_loader(ds, patch_size=(16, 16, 12), batch_size=3, deep_supervision_scales=DS, num_batches=4)
    batches = list(loader)
    assert len(batches) == len(loader) == 4
    for batch in batches:
        assert batch["data"].shape == (3, 1, 16, 16, 12) and batch["data"].dtype == torch.float32
        assert [tuple(t.shape) for t in batch["target"]] == [(3, 1, 16, 16, 12), (3, 1, 8, 8, 6), (3, 1, 4, 4, 3)]
        assert all(t.dtype == torch.int64 for t in batch["target"])
        assert len(batch["keys"]) == 3 and set(batch["keys"]) <= set(IDS)
        assert min(int(t.min()) for t in batch["target"]) >= 0  # -1 (shell and padding) became 0
        assert (batch["target"][0][2] > 0).any()  # the forced-foreground item


def test_without_deep_supervision_target_is_one_tensor(synthetic_folder: Path):
    ds = PreprocessedDataset(synthetic_folder, IDS)
    batch = next(iter(make_val_loader(ds, patch_size=(10, 12, 8), batch_size=2, num_batches=1)))
    assert isinstance(batch["target"], torch.Tensor) and batch["target"].shape == (2, 1, 10, 12, 8)
    assert batch["data"].shape == (2, 1, 10, 12, 8)


def test_2d_configuration_on_3d_volumes(synthetic_folder: Path):
    ds = PreprocessedDataset(synthetic_folder, IDS)
    loader = make_train_loader(ds, patch_size=(16, 12), batch_size=3, deep_supervision_scales=[[1, 1], [2, 2]])
    assert loader.source.sampler.patch_size == (18, 18)  # nnunetv2 get_patch_size((16, 12), ±180 deg, 0.85)
    batch = loader.batch(0)
    assert batch["data"].shape == (3, 1, 16, 12)
    assert [tuple(t.shape) for t in batch["target"]] == [(3, 1, 16, 12), (3, 1, 8, 6)]


def _is_identity_crop(data: np.ndarray, target: np.ndarray, case_data: np.ndarray, case_seg: np.ndarray) -> bool:
    """The patch is the case's box at some corner (padded with 0 / label 0 outside)."""
    inside = data > 0
    first = int(data[inside].min()) - 1
    corner = np.array([first // 10000, first // 100 % 100, first % 100]) - np.argwhere(inside).min(0)
    idx = np.argwhere(inside)
    src = tuple((idx + corner).T)
    return bool(
        np.array_equal(data[inside], case_data[src]) and np.array_equal(target[inside], np.maximum(case_seg[src], 0))
        and (target[~inside] == 0).all()
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["train_off", "val"])
def test_unaugmented_batches_are_plain_crops(tmp_path: Path, kind: str):
    case_data, case_seg = coordinate_case((14, 20, 17))
    write_synthetic_case(tmp_path, "coords", case_data, case_seg, labels=(1,))
    ds = PreprocessedDataset(tmp_path, ["coords"])
    common = dict(patch_size=(10, 24, 12), batch_size=4, num_batches=3)
    loader = (
        make_train_loader(ds, augmentation=AugmentationParams.off(), **common)
        if kind == "train_off"
        else make_val_loader(ds, **common)
    )
    for batch in loader:
        for j in range(4):
            data, target = batch["data"][j, 0].numpy(), batch["target"][j, 0].numpy()
            assert _is_identity_crop(data, target, case_data[0], case_seg[0])


def test_same_seed_same_batches_other_epoch_other_batches(synthetic_folder: Path):
    ds = PreprocessedDataset(synthetic_folder, IDS)
    kwargs = dict(patch_size=(12, 12, 12), batch_size=2, deep_supervision_scales=DS, num_batches=3, seed=42)
    first = list(make_train_loader(ds, **kwargs))
    again = list(make_train_loader(ds, **kwargs))
    for a, b in zip(first, again, strict=True):
        _assert_same(a, b)
    loader = make_train_loader(ds, **kwargs)
    loader.set_epoch(1)
    epoch1 = list(loader)
    assert not torch.equal(epoch1[0]["data"], first[0]["data"])
    resumed = list(make_train_loader(ds, epoch=1, **kwargs))  # a run resumed at epoch 1
    for a, b in zip(epoch1, resumed, strict=True):
        _assert_same(a, b)
    other_seed = next(iter(make_train_loader(ds, **{**kwargs, "seed": 43})))
    assert not torch.equal(other_seed["data"], first[0]["data"])


def test_train_and_val_streams_differ(synthetic_folder: Path):
    ds = PreprocessedDataset(synthetic_folder, IDS)
    kw = dict(patch_size=(12, 12, 12), batch_size=2, num_batches=1, seed=1)
    train = next(iter(make_train_loader(ds, augmentation=AugmentationParams.off(), **kw)))
    val = next(iter(make_val_loader(ds, **kw)))
    assert not torch.equal(train["data"], val["data"])


def test_loading_leaves_global_rngs_alone(synthetic_folder: Path):
    ds = PreprocessedDataset(synthetic_folder, IDS)
    np.random.seed(0)
    torch.manual_seed(0)
    np_state, torch_state = np.random.get_state()[1].copy(), torch.get_rng_state()
    list(make_train_loader(ds, patch_size=(12, 12, 12), batch_size=2, num_batches=3))
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)
    assert torch.equal(torch.get_rng_state(), torch_state)


def test_worker_process_gives_identical_batches(synthetic_folder: Path):
    ds = PreprocessedDataset(synthetic_folder, IDS)
    kwargs = dict(patch_size=(12, 12, 12), batch_size=2, deep_supervision_scales=DS, num_batches=3, seed=5, epoch=2)
    in_process = list(make_train_loader(ds, **kwargs))
    with make_train_loader(ds, num_workers=1, **kwargs) as loader:
        in_worker = list(loader)
        loader.set_epoch(3)  # the persistent worker follows the epoch
        next_epoch = list(loader)
    for a, b in zip(in_process, in_worker, strict=True):
        _assert_same(a, b)
    _assert_same(next_epoch[0], make_train_loader(ds, **{**kwargs, "epoch": 3}).batch(0))
    with pytest.raises(RuntimeError, match="closed"):
        iter(loader)


def test_real_hippocampus_batch(hippocampus_msd: Path, tmp_path: Path):
    ids = write_real_cases(hippocampus_msd, tmp_path, 3)
    ds = PreprocessedDataset(tmp_path, ids)
    loader = make_train_loader(ds, patch_size=(40, 56, 40), batch_size=2, deep_supervision_scales=DS, num_batches=3)
    assert loader.source.sampler.patch_size == (73, 80, 64)  # nnU-Net's initial patch for ±30 degrees
    for batch in loader:
        assert batch["data"].shape == (2, 1, 40, 56, 40)
        assert [tuple(t.shape[2:]) for t in batch["target"]] == [(40, 56, 40), (20, 28, 20), (10, 14, 10)]
        assert set(torch.unique(batch["target"][0]).tolist()) <= {0, 1, 2}
        assert (batch["target"][0][1] > 0).any()  # forced foreground item
