"""Cross-validation splits: nnU-Net's seeded 5-fold split, kept in ``splits_final.json``.

The first training run of a dataset writes ``<preprocessed>/<dataset>/splits_final.json``
(atomically) with the split nnU-Net v2's ``generate_crossval_split`` makes: the sorted case
ids, ``KFold(n_splits=5, shuffle=True, random_state=12345)`` - reproduced here without
scikit-learn: ``RandomState(12345)`` shuffles the indices, the shuffled order is cut into
folds (the first ``n % k`` folds one larger) and each fold's train/val lists are given in
sorted order. So nnU-Net users get the same folds, and a ``splits_final.json`` made by
nnU-Net (same format: a list of ``{"train": [...], "val": [...]}``) is used as is.

An existing file always wins (edit it to define your own folds); it is validated, and ids
it names that are not among the preprocessed cases are an error naming the file.
``fold="all"`` trains on every case and validates on the same cases, as nnU-Net does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from segforge.atomic import atomic_write_text
from segforge.config.jsonio import format_validation_error, read_json
from segforge.errors import ConfigError, UsageError

SPLITS_FILE = "splits_final.json"
DEFAULT_SEED = 12345
DEFAULT_FOLDS = 5
Fold = int | Literal["all"]


class FoldSplit(BaseModel):
    """One fold: the cases to train on and the cases to validate on."""

    model_config = ConfigDict(extra="forbid")

    train: list[str] = Field(min_length=1)
    val: list[str] = Field(min_length=1)


_SPLITS = TypeAdapter(list[FoldSplit])


def kfold_indices(
    n: int, n_splits: int = DEFAULT_FOLDS, seed: int = DEFAULT_SEED
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(train, val)`` index arrays of scikit-learn's ``KFold(n_splits, shuffle=True, random_state=seed)``."""
    if n_splits < 2 or n < n_splits:
        raise ConfigError(
            f"cannot make {n_splits} cross-validation folds from {n} case(s)",
            hint="use --fold all, or write your own splits_final.json",
        )
    order = np.arange(n)
    np.random.RandomState(seed).shuffle(order)
    sizes = np.full(n_splits, n // n_splits, dtype=int)
    sizes[: n % n_splits] += 1
    out, start = [], 0
    for size in sizes:
        val = np.zeros(n, dtype=bool)
        val[order[start : start + size]] = True
        out.append((np.flatnonzero(~val), np.flatnonzero(val)))
        start += size
    return out


def generate_crossval_split(
    case_ids: Sequence[str], seed: int = DEFAULT_SEED, n_splits: int = DEFAULT_FOLDS
) -> list[FoldSplit]:
    """nnU-Net v2's seeded k-fold split of ``case_ids`` (sorted first, as nnU-Net sorts them)."""
    ids = sorted(set(case_ids))
    return [
        FoldSplit(train=[ids[i] for i in tr], val=[ids[i] for i in va])
        for tr, va in kfold_indices(len(ids), n_splits, seed)
    ]


def splits_path(dataset_folder: str | os.PathLike[str]) -> Path:
    return Path(dataset_folder) / SPLITS_FILE


def save_splits(path: str | os.PathLike[str], splits: Sequence[FoldSplit]) -> None:
    """Write ``splits`` atomically as nnU-Net's JSON (a list of ``{"train", "val"}``)."""
    atomic_write_text(path, _SPLITS.dump_json(list(splits), indent=2).decode("utf-8") + "\n")


def load_splits(path: str | os.PathLike[str], known_ids: Sequence[str] | None = None) -> list[FoldSplit]:
    """Read and validate a splits file; with ``known_ids``, every id in it must be one of them."""
    hint = f"fix or delete {path} (it is re-created with the default 5-fold split)"
    raw = read_json(path, hint=hint)
    try:
        splits = _SPLITS.validate_python(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(path, exc), hint=hint) from None
    if not splits:
        raise ConfigError(f"{path}: contains no folds", hint=hint)
    if known_ids is not None:
        known = set(known_ids)
        for i, fold in enumerate(splits):
            for part in ("train", "val"):
                unknown = [c for c in getattr(fold, part) if c not in known]
                if unknown:
                    shown = ", ".join(unknown[:3]) + (f" and {len(unknown) - 3} more" if len(unknown) > 3 else "")
                    raise ConfigError(
                        f"{path}: fold {i} {part} names {len(unknown)} case(s) that are not preprocessed: {shown}",
                        hint=f"preprocess those cases, or {hint}",
                    )
    return splits


def load_or_create_splits(
    dataset_folder: str | os.PathLike[str],
    case_ids: Sequence[str],
    seed: int = DEFAULT_SEED,
    n_splits: int = DEFAULT_FOLDS,
) -> list[FoldSplit]:
    """The dataset's splits: ``splits_final.json`` if it exists (validated), else created and written."""
    path = splits_path(dataset_folder)
    if path.exists():
        return load_splits(path, case_ids)
    splits = generate_crossval_split(case_ids, seed, n_splits)
    save_splits(path, splits)
    return splits


def parse_fold(value: str | int) -> Fold:
    """``"all"`` or a non-negative fold number; anything else is a one-line UsageError."""
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        fold = int(value)
        if fold >= 0:
            return fold
    if isinstance(value, str) and value.strip().lower() == "all":
        return "all"
    raise UsageError(f"fold '{value}' is not a fold number or 'all'", hint="use --fold 0..4 or --fold all")


def get_fold(
    dataset_folder: str | os.PathLike[str], case_ids: Sequence[str], fold: str | int
) -> tuple[list[str], list[str]]:
    """``(train_ids, val_ids)`` for ``fold`` (a number or ``"all"``: every case, validated on itself)."""
    parsed = parse_fold(fold)
    if parsed == "all":
        ids = sorted(set(case_ids))
        if not ids:
            raise ConfigError(f"{dataset_folder}: no preprocessed cases to train on", hint="run segforge preprocess")
        return ids, list(ids)
    if parsed >= DEFAULT_FOLDS and not splits_path(dataset_folder).exists():  # refuse before writing a split
        raise UsageError(
            f"fold {parsed} does not exist in {splits_path(dataset_folder)} "
            f"(available: {', '.join(str(i) for i in range(DEFAULT_FOLDS))}, all)",
            hint=f"use --fold 0..{DEFAULT_FOLDS - 1} or --fold all, or write your own {SPLITS_FILE}",
        )
    splits = load_or_create_splits(dataset_folder, case_ids)
    if parsed >= len(splits):
        raise UsageError(
            f"fold {parsed} does not exist in {splits_path(dataset_folder)} "
            f"(available: {', '.join(str(i) for i in range(len(splits)))}, all)",
            hint=f"use --fold 0..{len(splits) - 1} or --fold all, or add folds to the splits file",
        )
    chosen = splits[parsed]
    return list(chosen.train), list(chosen.val)
