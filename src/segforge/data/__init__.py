"""Preprocessed-case storage, dataset loading and augmentation for training.

- ``case_store``: the on-disk format of a preprocessed case (written by preprocessing);
- ``dataset``: :class:`PreprocessedDataset`, memory-mapped cases of one data identifier;
- ``splits``: nnU-Net's 5-fold ``splits_final.json`` and fold selection (:func:`get_fold`);
- ``sampling``: patches with foreground oversampling; ``augmentation`` (+ ``spatial_transform``,
  ``intensity_transforms``): nnU-Net's training augmentation; ``ds_targets``: deep-supervision
  targets; ``loader``: :func:`make_train_loader` / :func:`make_val_loader`.

A trainer needs only::

    train_ids, val_ids = get_fold(dataset_folder, case_ids, fold)
    loader = make_train_loader(PreprocessedDataset(folder, train_ids), patch_size=..., batch_size=...,
                               deep_supervision_scales=net.deep_supervision_scales, seed=seed, epoch=epoch)
    for epoch in ...: loader.set_epoch(epoch); for batch in loader: ...

The names below are imported lazily, so ``import segforge.data`` does not import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "PreprocessedDataset": "segforge.data.dataset",
    "AugmentationParams": "segforge.data.augmentation",
    "make_train_loader": "segforge.data.loader",
    "make_val_loader": "segforge.data.loader",
    "BatchLoader": "segforge.data.loader",
    "get_fold": "segforge.data.splits",
    "load_or_create_splits": "segforge.data.splits",
    "parse_fold": "segforge.data.splits",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'segforge.data' has no attribute '{name}'")
