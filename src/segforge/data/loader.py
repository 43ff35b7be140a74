"""Training and validation batch loaders: sampling + augmentation, in-process or in worker processes.

A batch is ``{"data": float32 [B, C, *patch], "target": ..., "keys": [case ids]}`` where
``target`` is a list of int64 tensors ``[B, 1, *patch / factor]``, one per deep-supervision
scale (full resolution first), or a single int64 tensor without deep supervision. Labels
are 0..K (-1 outside the nonzero region was mapped to 0), ready for ``cross_entropy``.

**Determinism and resume.** Batch ``i`` of epoch ``e`` is made from its own generator,
``numpy.random.default_rng(SeedSequence([seed, stream, e, i]))`` (stream 0 = training,
1 = validation), and from nothing else: not from which worker makes it, how many workers
there are, what was drawn before, nor NumPy's/torch's global RNGs (which loading never
touches). So ``num_workers`` 0, 1 or 2 give identical batches, and a run resumed at an epoch
boundary (``set_epoch(e)`` or a new loader with ``epoch=e``) sees exactly the batches of an
uninterrupted run; the trainer only needs to keep ``seed`` and the epoch number. Batches
are delivered in order (workers take batch indices round robin).

**Workers.** ``num_workers=0`` makes batches in the calling process, between training
steps. With ``num_workers > 0`` persistent worker processes (torch's DataLoader, forked on
Linux, one thread each) make them ahead of time; ``set_epoch`` re-seeds them without
restarting. Tensors are pinned when CUDA is available (``pin_memory=None``). On a 2-core
CPU a worker competes with the training process for the cores; measure before using one
(``benchmarks/data_loader.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from segforge.data.augmentation import AugmentationParams, TrainingAugmentation, plan_augmentation
from segforge.data.dataset import PreprocessedDataset
from segforge.data.ds_targets import downsample_targets, normalize_scales
from segforge.data.sampling import DEFAULT_OVERSAMPLE, PatchSampler

TRAIN_STREAM, VAL_STREAM = 0, 1
Batch = dict[str, Any]


class BatchSource:
    """Makes batch ``(epoch, index)`` deterministically: sample, augment, map -1 to 0, downsample targets."""

    def __init__(
        self,
        sampler: PatchSampler,
        augmentation: TrainingAugmentation | None,
        deep_supervision_scales: Sequence[Sequence[float]] | None,
        seed: int,
        stream: int,
    ) -> None:
        self.sampler = sampler
        self.augmentation = augmentation
        self.scales = normalize_scales(deep_supervision_scales, len(sampler.final_patch_size))
        self.seed = int(seed)
        self.stream = int(stream)

    def rng(self, epoch: int, index: int) -> np.random.Generator:
        """The generator of batch ``index`` of ``epoch`` (a pure function of seed, stream, epoch, index)."""
        return np.random.default_rng(np.random.SeedSequence([self.seed, self.stream, int(epoch), int(index)]))

    def make(self, epoch: int, index: int) -> Batch:
        rng = self.rng(epoch, index)
        raw = self.sampler.sample(rng)
        data, seg = raw.data, raw.seg
        if self.augmentation is not None and self.augmentation.params.enabled:
            patch = self.sampler.final_patch_size
            data = np.empty((len(raw.keys), raw.data.shape[1], *patch), dtype=np.float32)
            seg = np.empty((len(raw.keys), 1, *patch), dtype=raw.seg.dtype)
            for j in range(len(raw.keys)):
                data[j], seg[j] = self.augmentation(raw.data[j], raw.seg[j], rng)
        np.maximum(seg, 0, out=seg)  # -1 (outside the nonzero region / padding) is background
        targets = downsample_targets(seg, self.scales) if self.scales else [seg]
        tensors = [torch.from_numpy(t.astype(np.int64)) for t in targets]
        return {
            "data": torch.from_numpy(data),
            "target": tensors if self.scales else tensors[0],
            "keys": raw.keys,
        }


class _EpochSampler(Sampler):
    """Yields ``(epoch, index)`` keys; lives in the main process so ``set_epoch`` reaches persistent workers."""

    def __init__(self, num_batches: int, epoch: int) -> None:
        self.num_batches = num_batches
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        return iter([(epoch, i) for i in range(self.num_batches)])

    def __len__(self) -> int:
        return self.num_batches


class _BatchDataset(Dataset):
    def __init__(self, source: BatchSource) -> None:
        self.source = source

    def __getitem__(self, key: tuple[int, int]) -> Batch:
        return self.source.make(*key)


def _init_worker(_: int) -> None:
    torch.set_num_threads(1)  # a worker is one process on one core; more threads only contend


class BatchLoader:
    """Iterating yields the ``num_batches`` batches of the current epoch; ``set_epoch`` moves on.

    Use as a context manager (or call :meth:`close`) to stop worker processes.
    """

    def __init__(
        self,
        source: BatchSource,
        num_batches: int,
        epoch: int = 0,
        num_workers: int = 0,
        pin_memory: bool | None = None,
        prefetch_factor: int = 2,
    ) -> None:
        if num_batches < 1 or num_workers < 0:
            raise ValueError(f"num_batches must be >= 1 and num_workers >= 0, got {num_batches}, {num_workers}")
        self.source = source
        self.num_workers = num_workers
        self._sampler = _EpochSampler(num_batches, epoch)
        pin = torch.cuda.is_available() if pin_memory is None else pin_memory
        self._loader: DataLoader | None = DataLoader(
            _BatchDataset(source),
            batch_size=None,
            sampler=self._sampler,
            num_workers=num_workers,
            pin_memory=pin,
            persistent_workers=num_workers > 0,
            prefetch_factor=prefetch_factor if num_workers > 0 else None,
            worker_init_fn=_init_worker if num_workers > 0 else None,
            generator=torch.Generator().manual_seed(0),  # keeps torch's global RNG untouched
        )

    @property
    def epoch(self) -> int:
        return self._sampler.epoch

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration yield the batches of ``epoch``."""
        self._sampler.epoch = int(epoch)

    def __len__(self) -> int:
        return self._sampler.num_batches

    def __iter__(self) -> Iterator[Batch]:
        if self._loader is None:
            raise RuntimeError("the loader was closed")
        return iter(self._loader)

    def batch(self, index: int, epoch: int | None = None) -> Batch:
        """Batch ``index`` of ``epoch`` (default: the current one), made in this process."""
        return self.source.make(self.epoch if epoch is None else epoch, index)

    def close(self) -> None:
        """Stop the worker processes (idempotent)."""
        loader, self._loader = self._loader, None
        iterator = getattr(loader, "_iterator", None)
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()

    def __enter__(self) -> BatchLoader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_train_loader(
    dataset: PreprocessedDataset,
    *,
    patch_size: Sequence[int],
    batch_size: int,
    deep_supervision_scales: Sequence[Sequence[float]] | None = None,
    augmentation: AugmentationParams | None = None,
    oversample_foreground_percent: float = DEFAULT_OVERSAMPLE,
    use_mask_for_norm: Sequence[bool] | None = None,
    num_batches: int = 250,
    seed: int = 0,
    epoch: int = 0,
    num_workers: int = 0,
    pin_memory: bool | None = None,
) -> BatchLoader:
    """Training batches of ``patch_size`` with nnU-Net's sampling and augmentation (``augmentation``
    defaults to nnU-Net's; ``AugmentationParams.off()`` for none). ``deep_supervision_scales``:
    the network's attribute of that name, or None for a single target."""
    params = augmentation if augmentation is not None else AugmentationParams()
    plan = plan_augmentation(patch_size, params)
    sampler = PatchSampler(dataset, batch_size, plan.sampled_patch_size, plan.patch_size, oversample_foreground_percent)
    mask_channels = [c for c, m in enumerate(use_mask_for_norm or []) if m]
    pipeline = TrainingAugmentation(plan, params, mask_channels)
    if getattr(dataset, "previous_stage_labels", None):  # a cascade stage (data/cascade.py): one-hot channels
        from segforge.data.cascade import CascadeAugmentation

        pipeline = CascadeAugmentation(plan, params, mask_channels, dataset.previous_stage_labels)
    source = BatchSource(sampler, pipeline, deep_supervision_scales, seed, TRAIN_STREAM)
    return BatchLoader(source, num_batches, epoch, num_workers, pin_memory)


def make_val_loader(
    dataset: PreprocessedDataset,
    *,
    patch_size: Sequence[int],
    batch_size: int,
    deep_supervision_scales: Sequence[Sequence[float]] | None = None,
    oversample_foreground_percent: float = DEFAULT_OVERSAMPLE,
    num_batches: int = 50,
    seed: int = 0,
    epoch: int = 0,
    num_workers: int = 0,
    pin_memory: bool | None = None,
) -> BatchLoader:
    """Validation batches as nnU-Net v2 makes them: same sampling and oversampling, final patch
    size, no augmentation, -1 mapped to 0, the same deep-supervision targets."""
    sampler = PatchSampler(dataset, batch_size, patch_size, patch_size, oversample_foreground_percent)
    source = BatchSource(sampler, None, deep_supervision_scales, seed, VAL_STREAM)
    return BatchLoader(source, num_batches, epoch, num_workers, pin_memory)
