"""Training data of a cascade stage: the image plus the previous stage's segmentation as one-hot channels.

nnU-Net's 3d_cascade_fullres sees, next to the image channels, one binary channel per
foreground label of the 3d_lowres prediction (upsampled to full resolution). Here a case's
``data`` becomes a lazy ``[C + K, *spatial]`` array (:class:`StackedChannels`): only the voxels
of a sampled patch are read and one-hot encoded, so nothing of the sampler changes and the
image stays memory-mapped.

Augmentation follows nnU-Net: the previous-stage segmentation is transformed *with* the label
(same rotation, scaling, mirroring; labels interpolated per label), never by the intensity
transforms, and is then re-encoded as one-hot channels; with probability 0.4 per sample each
one-hot channel is changed by a random binary operator (dilation, erosion, opening or closing
with a ball of radius 1-8 voxels), and with probability 0.2 one random connected component
(smaller than 15 % of the patch) of each channel is removed, so the network learns not to trust
the lowres result blindly.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from segforge.data import intensity_transforms as it
from segforge.data.augmentation import AugmentationParams, AugmentationPlan, TrainingAugmentation
from segforge.data.dataset import LoadedCase, PreprocessedDataset
from segforge.data.next_stage import labels_from_one_hot, next_stage_files, one_hot, open_next_stage
from segforge.errors import ConfigError

#: nnU-Net's ApplyRandomBinaryOperatorTransform settings for the cascade
P_BINARY_OPERATOR = 0.4
BINARY_STREL_RADIUS = (1, 8)
#: nnU-Net's RemoveRandomConnectedComponentFromOneHotEncodingTransform settings
P_REMOVE_COMPONENT = 0.2
MAX_REMOVED_FRACTION = 0.15


class StackedChannels:
    """``image`` [C, *spatial] followed by the one-hot of ``previous`` [*spatial]: read lazily by slicing."""

    def __init__(self, image: np.ndarray, previous: np.ndarray, values: Sequence[int]) -> None:
        if tuple(image.shape[1:]) != tuple(previous.shape):
            raise ValueError(f"image {list(image.shape)} and previous-stage {list(previous.shape)} shapes differ")
        self.image, self.previous, self.values = image, previous, list(values)
        self.shape = (image.shape[0] + len(self.values), *image.shape[1:])
        self.ndim = image.ndim
        self.dtype = np.dtype(np.float32)

    def __getitem__(self, index: Any) -> np.ndarray:
        index = index if isinstance(index, tuple) else (index,)
        channels, spatial = index[0], index[1:]
        image = np.asarray(self.image[(slice(None), *spatial)], dtype=np.float32)
        onehot = one_hot(np.asarray(self.previous[spatial]), self.values)
        return np.concatenate([image, onehot])[channels]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype)


class CascadeDataset(PreprocessedDataset):
    """Preprocessed cases whose ``data`` carries the previous stage's one-hot segmentation after the image.

    Every case must have its previous-stage file in ``previous_folder``; a missing one is a
    one-line ConfigError raised at construction (before any training), with ``hint_for(case)``.
    Later read errors (in loader workers) use ``hint_for(None)``: only strings are kept, so the
    dataset pickles for worker processes.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        case_ids: Sequence[str],
        previous_folder: str | os.PathLike[str],
        values: Sequence[int],
        hint_for: Any = None,
    ) -> None:
        super().__init__(folder, case_ids)
        self.previous_folder = Path(previous_folder)
        self.previous_stage_labels = list(values)
        hint_for = hint_for or (lambda case_id: "train the previous stage (3d_lowres) of every fold first")
        self.read_hint = hint_for(None)
        missing = [c for c in self.case_ids if not all(p.is_file() for p in next_stage_files(self.previous_folder, c))]
        if missing:
            shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
            raise ConfigError(
                f"{self.previous_folder}: no previous-stage prediction for {len(missing)} case(s): {shown}",
                hint=hint_for(missing[0]),
            )
        self._stacked: dict[str, LoadedCase] = {}

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_stacked"] = {}
        return state

    def load(self, case_id: str) -> LoadedCase:
        case = self._stacked.get(case_id)
        if case is None:
            base = super().load(case_id)
            shape = base.data.shape[1:]
            previous = open_next_stage(self.previous_folder, case_id, shape, self.read_hint)
            case = LoadedCase(case_id, StackedChannels(base.data, previous, self.previous_stage_labels), base.seg,
                              base.props)  # fmt: skip
            self._stacked[case_id] = case
        return case


def _ball(radius: int, ndim: int) -> np.ndarray:
    grid = np.indices((2 * radius + 1,) * ndim) - radius
    return (grid**2).sum(axis=0) <= radius**2


def random_binary_operators(
    channels: np.ndarray, rng: np.random.Generator, p_per_sample: float = P_BINARY_OPERATOR,
    radius: tuple[int, int] = BINARY_STREL_RADIUS,
) -> np.ndarray:  # fmt: skip
    """With ``p_per_sample``, change each one-hot channel (random order) by a random binary operator, in place."""
    from scipy import ndimage

    if rng.random() >= p_per_sample:
        return channels
    ops = (ndimage.binary_dilation, ndimage.binary_erosion, ndimage.binary_opening, ndimage.binary_closing)
    for k in rng.permutation(channels.shape[0]):
        op = ops[int(rng.integers(len(ops)))]
        strel = _ball(int(rng.integers(radius[0], radius[1] + 1)), channels.ndim - 1)
        channels[k] = op(channels[k] > 0.5, structure=strel)
    return channels


def remove_random_component(
    channels: np.ndarray, rng: np.random.Generator, p_per_sample: float = P_REMOVE_COMPONENT,
    max_fraction: float = MAX_REMOVED_FRACTION,
) -> np.ndarray:  # fmt: skip
    """With ``p_per_sample``, clear one random connected component (< ``max_fraction`` of the patch) per channel."""
    from scipy import ndimage

    if rng.random() >= p_per_sample:
        return channels
    limit = max_fraction * channels[0].size
    for k in range(channels.shape[0]):
        components, count = ndimage.label(channels[k] > 0.5)
        if count == 0:
            continue
        sizes = np.bincount(components.ravel())[1:]
        small = np.flatnonzero(sizes < limit) + 1
        if small.size:
            channels[k][components == small[int(rng.integers(small.size))]] = 0
    return channels


class CascadeAugmentation(TrainingAugmentation):
    """nnU-Net's augmentation with the last ``len(values)`` data channels treated as a segmentation.

    The one-hot channels are turned back into a label map, transformed spatially and mirrored
    together with the label (interpolated per label, border 0), skipped by the intensity
    transforms, re-encoded, and changed by :func:`random_binary_operators` and :func:`remove_random_component`.
    """

    def __init__(
        self, plan: AugmentationPlan, params: AugmentationParams, mask_channels: Sequence[int], values: Sequence[int],
        p_binary_operator: float = P_BINARY_OPERATOR, p_remove_component: float = P_REMOVE_COMPONENT,
    ) -> None:  # fmt: skip
        super().__init__(plan, params, mask_channels)
        self.values = list(values)
        self.p_binary_operator = p_binary_operator
        self.p_remove_component = p_remove_component

    def __call__(self, data: np.ndarray, seg: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if not self.params.enabled:
            return data, seg
        c = data.shape[0] - len(self.values)
        previous = labels_from_one_hot(data[c:], self.values)
        both = np.concatenate([seg.astype(np.int16), previous[None]])
        image, both = self._spatial(np.ascontiguousarray(data[:c]), both, rng)
        image = self._intensity(np.array(image, dtype=np.float32), rng)
        image, both = it.mirror(image, both, rng, self.plan.mirror_axes, self.params.p_mirror_per_axis)
        image = np.array(image, dtype=np.float32)
        outside = both[0] < 0
        for channel in self.mask_channels:
            image[channel][outside] = 0
        onehot = one_hot(np.maximum(both[1], 0), self.values)
        onehot = random_binary_operators(onehot, rng, self.p_binary_operator)
        onehot = remove_random_component(onehot, rng, self.p_remove_component)
        return np.concatenate([image, onehot]), np.ascontiguousarray(both[:1]).astype(seg.dtype, copy=False)
