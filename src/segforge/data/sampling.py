"""Drawing a batch of patches from preprocessed cases, as nnU-Net v2's data loader does.

For each batch item a case is drawn uniformly with replacement. The last items of a batch
(all from index ``round(batch_size * (1 - oversample_foreground_percent))`` on, nnU-Net's
rule: one of two for batch 2, two of seven for batch 7 at 0.33) are *forced foreground*: a
random foreground class present in the case is chosen from its stored class locations, a
random stored voxel of that class, and the patch is centred there (its lower corner is
clamped to the lowest allowed position only, exactly like nnU-Net, so the voxel is always
inside the patch). The other items take a uniformly random position in the allowed range.

The allowed range lets a patch overhang the image by half of ``need_to_pad`` on each side,
where ``need_to_pad`` is ``sampled - final`` patch size (so after the spatial transform's
centre crop the final patch can still reach the image border), grown where the image is
smaller than the patch. What falls outside the image is padded with 0 (image) and -1
(label), as nnU-Net pads.

The sampled patch is the larger *initial* patch (see ``augmentation.initial_patch_size``);
the spatial transform crops it to the final size. A 2D patch on 3D data samples one slice
(axis 0) per item, as a pseudo-3D patch of thickness 1.

All randomness comes from the ``numpy.random.Generator`` passed in; no global RNG is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from segforge.data.dataset import ClassLocations, PreprocessedDataset
from segforge.errors import ConfigError

DEFAULT_OVERSAMPLE = 0.33
SEG_PAD_VALUE = -1


@dataclass
class SampledBatch:
    """Raw patches before augmentation: ``data`` float32 ``[B, C, *patch]``, ``seg`` int16 ``[B, 1, *patch]``."""

    data: np.ndarray
    seg: np.ndarray
    keys: list[str]
    forced_foreground: list[bool]


def forced_foreground_items(batch_size: int, oversample_foreground_percent: float) -> list[bool]:
    """Which items of a batch are forced foreground (nnU-Net v2's "last XX percent" rule)."""
    first_forced = round(batch_size * (1 - oversample_foreground_percent))
    return [i >= first_forced for i in range(batch_size)]


def crop_and_pad(array: np.ndarray, lower: Sequence[int], out: np.ndarray, pad_value: float) -> np.ndarray:
    """Copy the box at ``lower`` (size ``out.shape[1:]``) of ``array`` [C, *spatial] into ``out``.

    Only the voxels inside the image are read (``array`` may be a memory map); the rest of
    ``out`` is set to ``pad_value``.
    """
    size = out.shape[1:]
    shape = array.shape[1:]
    src, dst = [slice(None)], [slice(None)]
    inside = True
    for lo, n, s in zip(lower, size, shape, strict=True):
        a, b = max(lo, 0), min(lo + n, s)
        inside &= a == lo and b == lo + n
        if b <= a:  # the box misses the image on this axis
            out.fill(pad_value)
            return out
        src.append(slice(a, b))
        dst.append(slice(a - lo, b - lo))
    if not inside:
        out.fill(pad_value)
    out[tuple(dst)] = array[tuple(src)]
    return out


class PatchSampler:
    """Draws ``SampledBatch`` es of ``patch_size`` from a dataset with foreground oversampling.

    ``patch_size`` is the size to sample (the enlarged initial patch when augmenting),
    ``final_patch_size`` the size the network gets; their difference is ``need_to_pad``.
    """

    def __init__(
        self,
        dataset: PreprocessedDataset,
        batch_size: int,
        patch_size: Sequence[int],
        final_patch_size: Sequence[int] | None = None,
        oversample_foreground_percent: float = DEFAULT_OVERSAMPLE,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {batch_size}", hint="fix batch_size in the plans")
        if not 0.0 <= oversample_foreground_percent <= 1.0:
            raise ConfigError(
                f"oversample_foreground_percent must be in [0, 1], got {oversample_foreground_percent}",
                hint="use e.g. 0.33 (nnU-Net's default)",
            )
        final = list(final_patch_size) if final_patch_size is not None else list(patch_size)
        if len(final) != len(patch_size) or any(p < f for p, f in zip(patch_size, final, strict=True)):
            raise ValueError(f"sampled patch {list(patch_size)} must be >= final patch {final} on every axis")
        self.dataset = dataset
        self.batch_size = batch_size
        self.patch_size = tuple(int(p) for p in patch_size)
        self.final_patch_size = tuple(int(p) for p in final)
        self.forced = forced_foreground_items(batch_size, oversample_foreground_percent)
        first = dataset.load(dataset.case_ids[0])
        self.num_channels = first.data.shape[0]
        self.image_ndim = first.data.ndim - 1
        # a 2D patch on 3D volumes samples one slice: a pseudo-3D patch of thickness 1
        self.pseudo_3d = len(self.patch_size) == 2 and self.image_ndim == 3
        if not self.pseudo_3d and len(self.patch_size) != self.image_ndim:
            raise ConfigError(
                f"{dataset.folder}: {len(self.patch_size)}D patch {list(self.patch_size)} "
                f"for {self.image_ndim}D preprocessed images",
                hint="use a configuration whose patch matches the preprocessed data",
            )
        lead = (1,) if self.pseudo_3d else ()
        self._sample_patch = lead + self.patch_size
        self._need_to_pad = [p - f for p, f in zip(lead + self.patch_size, lead + self.final_patch_size, strict=True)]

    def sample(self, rng: np.random.Generator) -> SampledBatch:
        """One batch of raw patches (fresh arrays: safe to hand out without copying)."""
        b = self.batch_size
        data = np.empty((b, self.num_channels, *self._sample_patch), dtype=np.float32)
        seg = np.empty((b, 1, *self._sample_patch), dtype=np.int16)
        ids = self.dataset.case_ids
        keys = [ids[i] for i in rng.integers(0, len(ids), size=b)]
        for j, key in enumerate(keys):
            case = self.dataset.load(key)
            locations = self.dataset.class_locations(key) if self.forced[j] else None
            lower = self.lower_corner(case.data.shape[1:], rng, locations)
            crop_and_pad(case.data, lower, data[j], 0.0)
            crop_and_pad(case.seg, lower, seg[j], SEG_PAD_VALUE)
        if self.pseudo_3d:
            data, seg = data[:, :, 0], seg[:, :, 0]
        return SampledBatch(data, seg, keys, list(self.forced))

    def lower_corner(
        self, shape: Sequence[int], rng: np.random.Generator, locations: ClassLocations | None
    ) -> list[int]:
        """The patch's lower corner: random in the allowed range, or centred on a foreground voxel."""
        patch = self._sample_patch
        lbs, ubs = [], []
        for s, p, need in zip(shape, patch, self._need_to_pad, strict=True):
            need = max(need, p - s)  # an image smaller than the patch is padded on both sides
            lbs.append(-((need + 1) // 2))
            ubs.append(s + (need + 1) // 2 - p)
        if locations is not None and locations.labels:
            label = locations.labels[int(rng.integers(len(locations.labels)))]
            voxel = locations.voxel(label, int(rng.integers(locations.index[label][1])))
            return [max(lb, int(v) - p // 2) for lb, v, p in zip(lbs, voxel, patch, strict=True)]
        # a case without any foreground falls back to a random patch, as nnU-Net does
        return [int(rng.integers(lb, ub + 1)) for lb, ub in zip(lbs, ubs, strict=True)]
