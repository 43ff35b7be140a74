"""The preprocessed cases a training run draws its patches from.

Training reads a small patch from a random case many thousand times per epoch, so nothing
here reads a whole volume: a case's image and label are memory-mapped once (``np.load``
with ``mmap_mode="r"``) and kept open, and only the voxels of a patch are ever touched.
The foreground locations used for oversampling are memory-mapped too; per case only a
tiny ``label -> (first row, rows)`` index is held in memory, so one forced-foreground
patch reads one row of that file, not all of them.

Open maps are a per-process cache: pickling a dataset (to send it to a worker started with
``spawn``) drops them, and the worker re-opens what it needs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segforge.data.case_store import CaseProperties, locations_file, properties_file, read_case
from segforge.errors import ConfigError

_PREPROCESS_HINT = "run `segforge preprocess` for this configuration (it redoes missing or incomplete cases)"


@dataclass(frozen=True)
class LoadedCase:
    """One case's memory-mapped arrays: ``data`` float32 ``[C, *spatial]``, ``seg`` int ``[1, *spatial]``."""

    case_id: str
    data: np.ndarray
    seg: np.ndarray
    props: CaseProperties


@dataclass(frozen=True)
class ClassLocations:
    """Foreground voxels sampled at preprocessing, memory-mapped, with a per-label row index."""

    rows: np.ndarray  # int32 [N, 1 + ndim]: (label, *coords), grouped by label
    index: dict[int, tuple[int, int]]  # label -> (first row, number of rows), only labels with rows

    @property
    def labels(self) -> list[int]:
        """Foreground labels present in the case (with at least one stored location), ascending."""
        return sorted(self.index)

    def voxel(self, label: int, k: int) -> np.ndarray:
        """The ``k``-th stored voxel (coordinates only) of ``label``."""
        start, count = self.index[label]
        if not 0 <= k < count:
            raise IndexError(f"label {label} has {count} stored locations, asked for #{k}")
        return np.asarray(self.rows[start + k, 1:])


def _index_rows(labels: np.ndarray) -> dict[int, tuple[int, int]]:
    if labels.size == 0:
        return {}
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    ends = np.r_[starts[1:], labels.size]
    index: dict[int, tuple[int, int]] = {}
    for s, e in zip(starts, ends, strict=True):
        label = int(labels[s])
        if label in index:  # rows of one label must be contiguous for the (start, count) index
            raise ValueError(f"rows of label {label} are not grouped")
        index[label] = (int(s), int(e - s))
    return index


class PreprocessedDataset:
    """The cases ``case_ids`` of one preprocessed data-identifier folder, opened lazily.

    Construction only checks that every case has its JSON (a missing case is a one-line
    ConfigError naming the folder and the first missing ids); arrays are opened on first
    use and kept memory-mapped.
    """

    def __init__(self, folder: str | os.PathLike[str], case_ids: Sequence[str]) -> None:
        self.folder = Path(folder)
        self.case_ids: list[str] = list(dict.fromkeys(case_ids))
        if not self.case_ids:
            raise ConfigError(f"{self.folder}: no case ids given for the dataset", hint=_PREPROCESS_HINT)
        if not self.folder.is_dir():
            raise ConfigError(f"{self.folder}: preprocessed folder not found", hint=_PREPROCESS_HINT)
        missing = [c for c in self.case_ids if not properties_file(self.folder, c).is_file()]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise ConfigError(
                f"{self.folder}: {len(missing)} case(s) not preprocessed: {shown}",
                hint=_PREPROCESS_HINT,
            )
        self._cases: dict[str, LoadedCase] = {}
        self._locations: dict[str, ClassLocations] = {}

    def __len__(self) -> int:
        return len(self.case_ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self.case_ids)

    def __contains__(self, case_id: object) -> bool:
        return case_id in self.case_ids

    def __getstate__(self) -> dict:
        # open memory maps would be pickled as full in-memory copies; a worker re-opens them
        state = self.__dict__.copy()
        state["_cases"], state["_locations"] = {}, {}
        return state

    def load(self, case_id: str) -> LoadedCase:
        """The case's memory-mapped arrays and properties (opened once per process)."""
        case = self._cases.get(case_id)
        if case is None:
            if case_id not in self.case_ids:
                raise KeyError(f"case '{case_id}' is not part of this dataset")
            data, seg, props = read_case(self.folder, case_id, mmap=True)
            if seg is None:
                raise ConfigError(
                    f"{properties_file(self.folder, case_id)}: case has no segmentation, cannot train on it",
                    hint="preprocess the training cases with their labels",
                )
            case = LoadedCase(case_id, data, seg, props)
            self._cases[case_id] = case
        return case

    def class_locations(self, case_id: str) -> ClassLocations:
        """The case's stored foreground locations (empty for a case without foreground)."""
        locs = self._locations.get(case_id)
        if locs is None:
            locs = self._open_locations(case_id)
            self._locations[case_id] = locs
        return locs

    def _open_locations(self, case_id: str) -> ClassLocations:
        ndim = self.load(case_id).data.ndim - 1
        path = locations_file(self.folder, case_id)
        try:
            rows = np.load(path, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            raise ConfigError(f"{path}: file not found (incomplete preprocessed case)", hint=_PREPROCESS_HINT) from None
        except (ValueError, OSError) as exc:
            raise ConfigError(f"{path}: not a readable .npy array ({exc})", hint=_PREPROCESS_HINT) from None
        if rows.size == 0:
            return ClassLocations(np.empty((0, 1 + ndim), dtype=np.int32), {})
        if rows.ndim != 2 or rows.shape[1] != 1 + ndim:
            raise ConfigError(
                f"{path}: shape {list(rows.shape)}, expected [N, {1 + ndim}] (label + {ndim} coordinates)",
                hint=_PREPROCESS_HINT,
            )
        try:
            index = _index_rows(np.asarray(rows[:, 0]))
        except ValueError as exc:
            raise ConfigError(f"{path}: {exc}", hint=_PREPROCESS_HINT) from None
        return ClassLocations(rows, index)
