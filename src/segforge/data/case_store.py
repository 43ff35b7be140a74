"""The on-disk format of a preprocessed case, written by preprocessing and read by training.

A case ``CASE`` of one data identifier folder (``preprocessed/<dataset>/<data_identifier>/``)
is four plain files, none of them pickled:

- ``CASE.npy``        float32 ``[C, *spatial]``, the normalized, resampled image;
- ``CASE_seg.npy``    int8 (int16 for labels > 127) ``[1, *spatial]``; -1 marks voxels
  outside the nonzero region (absent for cases preprocessed without a label);
- ``CASE_locs.npy``   int32 ``[N, 1 + ndim]``: rows ``(label, *coords)`` of voxels sampled per
  foreground class for oversampling, grouped by label (absent without a label);
- ``CASE.json``       :class:`CaseProperties`: geometry to map predictions back, shapes, the
  preprocessing digest and version.

Raw ``.npy`` because training reads random patches of many cases: ``np.load(mmap_mode="r")``
maps them without reading or decompressing whole volumes. Class locations are one ``.npy``
rather than JSON lists or an ``.npz`` because that is the fastest of the three to load (one
``np.load``, no zip or text parsing) and keeps the JSON small.

Writes are atomic and ordered: an old JSON is removed first, every array goes to a temporary
name and is renamed into place, and the JSON is written last. A case is therefore *complete*
only when its JSON exists, parses, carries the digest of the current plans and its arrays
have at least the size the JSON implies; an interrupted or stale case is simply redone.
The files are not fsynced (that cost 4 ms per file, more than preprocessing a hippocampus
case): preprocessed data can always be made again, and the size check catches files a
power loss left empty.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from segforge.atomic import TMP_SUFFIX, atomic_path
from segforge.config.jsonio import load_model
from segforge.errors import ConfigError
from segforge.io.image_io import ImageProperties

#: bump when the arrays or CaseProperties change meaning; older cases are then redone
CASE_FORMAT_VERSION = 1
PathLike = str | os.PathLike[str]
_REDO_HINT = "re-run `segforge preprocess` (it redoes incomplete or stale cases)"


class SourceFile(BaseModel):
    """A raw input file as it was when the case was made (a changed file makes the case stale)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    size: int
    mtime_ns: int


class CaseProperties(BaseModel):
    """Everything about one preprocessed case that is not voxels.

    Spatial lists before ``shape_after_resampling`` are in the *transposed* axis order (after
    ``transpose_forward``), except ``image``, which is the raw file's geometry as read.
    Undo preprocessing with: resample ``shape_after_resampling`` -> ``shape_after_cropping``,
    paste into ``shape_before_cropping`` at ``bbox``, transpose with ``transpose_backward``.
    """

    model_config = ConfigDict(extra="forbid")

    format_version: int = CASE_FORMAT_VERSION
    case_id: str
    digest: str = Field(description="preprocessing digest of the plans/configuration that made this case")
    preprocessing_version: str
    data_identifier: str
    image: ImageProperties
    transpose_forward: list[int]
    original_spacing: list[float]
    shape_before_cropping: list[int]
    bbox: list[tuple[int, int]]
    shape_after_cropping: list[int]
    spacing: list[float]
    shape_after_resampling: list[int]
    num_channels: int
    has_seg: bool
    class_location_counts: dict[str, int] = Field(default_factory=dict, description="label -> sampled voxels")
    source_files: list[SourceFile] = Field(default_factory=list)


# -- file names ------------------------------------------------------------------------------
def data_file(folder: PathLike, case_id: str) -> Path:
    return Path(folder) / f"{case_id}.npy"


def seg_file(folder: PathLike, case_id: str) -> Path:
    return Path(folder) / f"{case_id}_seg.npy"


def locations_file(folder: PathLike, case_id: str) -> Path:
    return Path(folder) / f"{case_id}_locs.npy"


def properties_file(folder: PathLike, case_id: str) -> Path:
    return Path(folder) / f"{case_id}.json"


# -- writing ---------------------------------------------------------------------------------
def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path, fsync=False) as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.ascontiguousarray(array), allow_pickle=False)


def _save_json(path: Path, props: CaseProperties) -> None:
    with atomic_path(path, fsync=False) as tmp:
        tmp.write_text(props.model_dump_json(indent=1) + "\n", encoding="utf-8")


def pack_class_locations(locations: dict[int, np.ndarray], ndim: int) -> np.ndarray:
    """``{label: [N, ndim] coords}`` as one int32 ``[sum N, 1 + ndim]`` array (rows grouped by label)."""
    blocks = [np.empty((0, 1 + ndim), dtype=np.int32)]
    for label in sorted(locations):
        coords = np.asarray(locations[label], dtype=np.int32).reshape(-1, ndim)
        blocks.append(np.concatenate([np.full((len(coords), 1), label, dtype=np.int32), coords], axis=1))
    return np.concatenate(blocks)


def write_case(
    folder: PathLike,
    case_id: str,
    data: np.ndarray,
    seg: np.ndarray | None,
    props: CaseProperties,
    class_locations: dict[int, np.ndarray] | None = None,
) -> None:
    """Write one case atomically; its JSON goes last so a half-written case is never complete."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):  # an old JSON must not vouch for new arrays
        properties_file(folder, case_id).unlink()
    if data.dtype != np.float32:
        raise ValueError(f"case {case_id}: data must be float32, got {data.dtype}")
    _save_npy(data_file(folder, case_id), data)
    if seg is not None:
        _save_npy(seg_file(folder, case_id), seg)
        locs = pack_class_locations(class_locations or {}, data.ndim - 1)
        _save_npy(locations_file(folder, case_id), locs)
    else:
        for stale in (seg_file(folder, case_id), locations_file(folder, case_id)):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
    _save_json(properties_file(folder, case_id), props)


# -- reading ---------------------------------------------------------------------------------
def read_properties(folder: PathLike, case_id: str) -> CaseProperties:
    """The case's JSON; a missing or invalid one is a one-line ConfigError."""
    return load_model(properties_file(folder, case_id), CaseProperties, hint=_REDO_HINT)


def _load_npy(path: Path, mmap: bool) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found (incomplete preprocessed case)", hint=_REDO_HINT) from None
    except (ValueError, OSError) as exc:
        raise ConfigError(f"{path}: not a readable .npy array ({exc})", hint=_REDO_HINT) from None


def read_case(
    folder: PathLike, case_id: str, mmap: bool = True
) -> tuple[np.ndarray, np.ndarray | None, CaseProperties]:
    """``(data, seg, props)`` of a complete case; arrays memory-mapped read-only unless ``mmap=False``.

    ``seg`` is None for cases preprocessed without a label. Shapes are checked against the
    JSON so a mismatched set of files is an error, not a silent wrong patch.
    """
    folder = Path(folder)
    props = read_properties(folder, case_id)
    data = _load_npy(data_file(folder, case_id), mmap)
    expected = (props.num_channels, *props.shape_after_resampling)
    if data.shape != expected:
        raise ConfigError(
            f"{data_file(folder, case_id)}: shape {list(data.shape)} does not match its JSON ({list(expected)})",
            hint=_REDO_HINT,
        )
    seg = None
    if props.has_seg:
        seg = _load_npy(seg_file(folder, case_id), mmap)
        if seg.shape[1:] != data.shape[1:]:
            raise ConfigError(
                f"{seg_file(folder, case_id)}: shape {list(seg.shape)} does not match the image", hint=_REDO_HINT
            )
    return data, seg, props


def read_class_locations(folder: PathLike, case_id: str) -> dict[int, np.ndarray]:
    """``{label: int32 [N, ndim] coords}`` sampled for oversampling; empty for cases without a label."""
    path = locations_file(folder, case_id)
    if not path.exists():
        return {}
    packed = _load_npy(path, mmap=False)
    if packed.size == 0:
        return {}
    labels = packed[:, 0]
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    ends = np.r_[starts[1:], len(labels)]
    return {int(labels[s]): packed[s:e, 1:] for s, e in zip(starts, ends, strict=True)}


# -- completeness ------------------------------------------------------------------------------
def complete_properties(folder: PathLike, case_id: str, digest: str) -> CaseProperties | None:
    """The case's properties if it is complete for ``digest`` (current format, arrays present), else None."""
    folder = Path(folder)
    try:
        props = CaseProperties.model_validate_json(properties_file(folder, case_id).read_bytes())
    except (OSError, ValidationError, ValueError):
        return None
    if props.digest != digest or props.format_version != CASE_FORMAT_VERSION or props.case_id != case_id:
        return None
    voxels = int(np.prod(props.shape_after_resampling))
    needed = [(data_file(folder, case_id), props.num_channels * voxels * 4)]
    if props.has_seg:
        needed += [(seg_file(folder, case_id), voxels), (locations_file(folder, case_id), 0)]
    return props if all(_size(p) >= n for p, n in needed) else None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def case_is_complete(folder: PathLike, case_id: str, digest: str) -> bool:
    """True when the case's JSON is valid, has ``digest`` and the current format, and its arrays exist."""
    return complete_properties(folder, case_id, digest) is not None


def list_case_ids(folder: PathLike) -> list[str]:
    """Ids of every case with a JSON in ``folder`` (complete or not), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json") and not p.name.startswith("."))


def list_complete_cases(folder: PathLike, digest: str) -> list[str]:
    """Ids of the cases in ``folder`` that are complete for ``digest`` (sorted)."""
    return [cid for cid in list_case_ids(folder) if case_is_complete(folder, cid, digest)]


def remove_temporaries(folder: PathLike) -> int:
    """Delete leftovers of interrupted atomic writes (``.NAME.*.tmp``); returns how many."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    count = 0
    for path in folder.iterdir():
        if path.name.startswith(".") and TMP_SUFFIX in path.name and path.is_file():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                count += 1
    return count
