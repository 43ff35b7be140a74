"""Checkpoints: tensors and plain data only, written atomically, loadable with ``weights_only=True``.

A checkpoint is one ``torch.save`` of a dict (see :data:`CHECKPOINT_KEYS`): network weights,
optimizer and grad-scaler state, the LR schedule, progress counters, logged curves, every RNG
state (:mod:`segforge.training.rng`), the seed the loaders derive their batches from, and
what is needed to rebuild the model with no other file: the plans as a JSON string, the
configuration name, the network spec (registry name, version, params, channels, classes) and
the versions of segforge and the plugins that provided the components.

Three files per fold: ``checkpoint_latest.pt`` (every ``checkpoint_every`` epochs and on
interruption), ``checkpoint_best.pt`` (best EMA pseudo-Dice) and ``checkpoint_final.pt``.
``--continue`` resumes from whichever valid one has made the most progress; one that is
truncated or corrupt is skipped with a warning.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from segforge.atomic import atomic_path, remove_interrupted_writes
from segforge.errors import SegforgeError

CHECKPOINT_FORMAT_VERSION = 1
LATEST, BEST, FINAL = "checkpoint_latest.pt", "checkpoint_best.pt", "checkpoint_final.pt"
CHECKPOINT_KEYS = (
    "format_version",
    "segforge_version",
    "network_weights",
    "optimizer_state",
    "grad_scaler_state",
    "schedule",
    "progress",
    "logs",
    "rng",
    "seed",
    "plans_json",
    "configuration",
    "network",
    "trainer",
    "loss",
    "versions",
)


class CheckpointError(SegforgeError):
    """A checkpoint cannot be read or does not hold what segforge writes."""

    exit_code = 2


class CheckpointWarning(UserWarning):
    """A checkpoint was skipped while looking for one to resume from."""


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> None:
    """Write ``payload`` atomically (temporary file, fsync, rename): a crash never leaves half a file."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; unreadable or foreign files raise CheckpointError."""
    import torch

    path = Path(path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: checkpoint not found", hint="check the path or train first") from None
    except Exception as exc:  # truncated zip, pickle refused by weights_only, wrong file type
        reason = " ".join(str(exc).split())[:200]
        raise CheckpointError(
            f"{path}: not a readable segforge checkpoint ({type(exc).__name__}: {reason})",
            hint="delete it; --continue falls back to another checkpoint or starts over",
        ) from None
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(payload, dict) or k not in payload]
    if missing:
        raise CheckpointError(
            f"{path}: not a segforge checkpoint (missing {', '.join(missing[:4])})",
            hint="pass a checkpoint written by `segforge train`",
        )
    if payload["format_version"] > CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {payload['format_version']} is newer than this segforge understands",
            hint="upgrade segforge",
        )
    return payload


def resumable_checkpoint(fold_folder: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]] | None:
    """The valid checkpoint in ``fold_folder`` that has made the most progress, or None.

    Candidates are latest, final and best; invalid ones are skipped with a
    :class:`CheckpointWarning`. Ties prefer final, then latest (they hold the newest state).
    """
    folder = Path(fold_folder)
    found: list[tuple[int, int, Path, dict[str, Any]]] = []
    for rank, name in enumerate((FINAL, LATEST, BEST)):
        path = folder / name
        remove_interrupted_writes(path)  # a kill mid-save left a temporary; nothing writes before resuming
        if not path.exists():
            continue
        try:
            payload = load_checkpoint(path)
        except CheckpointError as exc:
            warnings.warn(f"skipping {exc.message}", CheckpointWarning, stacklevel=2)
            continue
        found.append((int(payload["progress"]["iteration"]), -rank, path, payload))
    if not found:
        return None
    _, _, path, payload = max(found, key=lambda item: (item[0], item[1]))
    return path, payload


def plain_network_weights(network: Any) -> dict[str, Any]:
    """``state_dict()`` of the underlying module (a ``torch.compile`` wrapper's ``_orig_mod.`` removed)."""
    module = getattr(network, "_orig_mod", network)
    return {k: v.detach().clone() for k, v in module.state_dict().items()}
