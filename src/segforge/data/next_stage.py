"""Previous-stage segmentations of a cascade: their files, and the one-hot channels made from them.

A 3d_lowres run writes, for each case it did not train on, its predicted segmentation at the
*next* stage's (3d_cascade_fullres's) preprocessed geometry::

    <results>/<dataset>/3d_lowres/<run>/predicted_next_stage/3d_cascade_fullres/<case>.npz   array "seg"
    <results>/<dataset>/3d_lowres/<run>/predicted_next_stage/3d_cascade_fullres/<case>.json  sidecar

The array is the label map (label values, uint8 or int16) in the transposed, cropped and
resampled axis order of the next stage's preprocessed case, so the cascade's loader can stack
it onto the image voxel for voxel. ``np.savez_compressed`` keeps it small (label maps compress
well); it is read with ``allow_pickle=False``. The JSON sidecar is written last: a case whose
JSON is missing is not complete (an interrupted write is redone).
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from segforge.atomic import atomic_write_bytes, atomic_write_json
from segforge.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from segforge.config.plans import ConfigurationPlan, Plans

NEXT_STAGE_DIR = "predicted_next_stage"
NEXT_STAGE_FORMAT_VERSION = 1
ARRAY_KEY = "seg"
#: the label name nnU-Net v2 reserves for unannotated voxels: never a one-hot channel
IGNORE_NAME = "ignore"


def next_stage_folder(run_folder: str | os.PathLike[str], next_stage: str) -> Path:
    """Where a run (``<trainer>__<network>__<plans>`` folder) keeps its predictions for ``next_stage``."""
    return Path(run_folder) / NEXT_STAGE_DIR / next_stage


def next_stage_files(folder: str | os.PathLike[str], case_id: str) -> tuple[Path, Path]:
    """``(<case>.npz, <case>.json)`` in ``folder``."""
    folder = Path(folder)
    return folder / f"{case_id}.npz", folder / f"{case_id}.json"


def is_complete(folder: str | os.PathLike[str], case_id: str) -> bool:
    """True when both files of ``case_id`` exist (the sidecar is written last)."""
    return all(p.is_file() for p in next_stage_files(folder, case_id))


def write_next_stage(folder: str | os.PathLike[str], case_id: str, seg: np.ndarray, info: dict[str, Any]) -> Path:
    """Write ``seg`` (label values) and its sidecar ``info`` atomically; returns the ``.npz`` path."""
    npz, sidecar = next_stage_files(folder, case_id)
    npz.parent.mkdir(parents=True, exist_ok=True)
    high = int(seg.max()) if seg.size else 0
    array = seg.astype(np.uint8 if 0 <= high < 256 and seg.min(initial=0) >= 0 else np.int16, copy=False)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{ARRAY_KEY: array})
    atomic_write_bytes(npz, buffer.getvalue())
    atomic_write_json(sidecar, {"format_version": NEXT_STAGE_FORMAT_VERSION, "case_id": case_id,
                                "shape": list(array.shape), "dtype": str(array.dtype), **info})  # fmt: skip
    return npz


def read_next_stage(
    folder: str | os.PathLike[str], case_id: str, expected_shape: Sequence[int], hint: str
) -> np.ndarray:
    """The stored label map of ``case_id``; a missing, unreadable or mis-shaped file is a ConfigError with ``hint``."""
    npz, sidecar = next_stage_files(folder, case_id)
    if not npz.is_file() or not sidecar.is_file():
        raise ConfigError(f"{npz}: no previous-stage prediction for case '{case_id}'", hint=hint)
    try:
        with np.load(npz, allow_pickle=False) as archive:
            seg = archive[ARRAY_KEY]
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{npz}: not a readable previous-stage prediction ({exc})", hint=hint) from None
    if list(seg.shape) != list(expected_shape):
        raise ConfigError(
            f"{npz}: shape {list(seg.shape)} differs from the preprocessed case ({list(expected_shape)})",
            hint=f"the file belongs to other preprocessing; delete it and {hint[0].lower()}{hint[1:]}",
        )
    return seg


def open_next_stage(
    folder: str | os.PathLike[str], case_id: str, expected_shape: Sequence[int], hint: str
) -> np.ndarray:
    """The label map of ``case_id`` memory-mapped from an unpacked ``<case>.npy`` beside the ``.npz``.

    Cascades exist for large images, so holding every case's label map in memory (1 byte per
    voxel per case, in every loader process) does not scale; like nnU-Net's unpacked
    preprocessed data, the ``.npz`` is unpacked once to a plain ``.npy`` (atomic, redone when the
    ``.npz`` is newer) and only the patches' voxels are ever read.
    """
    from segforge.atomic import atomic_path

    npz, _ = next_stage_files(folder, case_id)
    unpacked = npz.with_suffix(".npy")
    try:
        fresh = unpacked.stat().st_mtime_ns >= npz.stat().st_mtime_ns
    except FileNotFoundError:
        fresh = False
    if fresh:
        try:
            array = np.load(unpacked, mmap_mode="r", allow_pickle=False)
            if list(array.shape) == list(expected_shape):
                return array
        except (OSError, ValueError):
            pass  # unpacked again below
    seg = read_next_stage(folder, case_id, expected_shape, hint)
    with atomic_path(unpacked, ".npy", fsync=False) as tmp:
        np.save(tmp, seg, allow_pickle=False)
    return np.load(unpacked, mmap_mode="r", allow_pickle=False)


def foreground_values(labels: dict[str, int]) -> list[int]:
    """The foreground label values of a plans' ``labels`` (ascending): one one-hot channel each."""
    return sorted({int(v) for v in labels.values()} - {0})


def cascade_values(plans: Plans) -> list[int]:
    """Label values that get a one-hot channel: the foreground labels (not the ignore label)."""
    return foreground_values({k: v for k, v in plans.labels.items() if k != IGNORE_NAME})


def previous_stage_channels(plans: Plans, conf: ConfigurationPlan) -> int:
    """Extra input channels of ``conf``: one per foreground label for a cascade stage, else 0."""
    return len(cascade_values(plans)) if conf.previous_stage is not None else 0


def one_hot(seg: np.ndarray, values: Sequence[int]) -> np.ndarray:
    """float32 ``[len(values), *seg.shape]``: channel k is 1 where ``seg == values[k]`` (background has none)."""
    out = np.empty((len(values), *seg.shape), dtype=np.float32)
    for k, value in enumerate(values):
        np.equal(seg, value, out=out[k], casting="unsafe")
    return out


def labels_from_one_hot(channels: np.ndarray, values: Sequence[int]) -> np.ndarray:
    """int16 label map of one-hot ``channels`` (0 where no channel is set; a later channel wins a tie)."""
    seg = np.zeros(channels.shape[1:], dtype=np.int16)
    for k, value in enumerate(values):
        seg[channels[k] > 0.5] = value
    return seg
