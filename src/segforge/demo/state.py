"""What the demo has completed, so a re-run skips it: ``<out>/demo_state.json``.

Most stages know by themselves what is done (conversion and preprocessing skip complete
files, training continues from its checkpoint). Three cannot tell from their outputs alone
whether those are still current: the dataset check, and predictions and evaluation, which
belong to one trained model. For these the state file records a *stamp* of their input (a
digest of the raw files, a digest of the checkpoint); a stage whose stamp matches is skipped.
A missing or unreadable state file only means that those stages run again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from segforge.atomic import atomic_write_json

STATE_FILE = "demo_state.json"
STATE_FORMAT = 1


class DemoState(BaseModel):
    """Stage name -> stamp of the input it completed with."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = STATE_FORMAT
    stamps: dict[str, str] = {}


def load_state(root: Path) -> DemoState:
    """The recorded state, or an empty one when the file is missing, broken or of another format."""
    path = Path(root) / STATE_FILE
    try:
        state = DemoState.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return DemoState()
    return state if state.format_version == STATE_FORMAT else DemoState()


def save_stamp(root: Path, stage: str, stamp: str | None) -> None:
    """Record (or with ``None`` forget) ``stage``'s stamp; written atomically."""
    state = load_state(root)
    if stamp is None:
        state.stamps.pop(stage, None)
    else:
        state.stamps[stage] = stamp
    atomic_write_json(Path(root) / STATE_FILE, state.model_dump(mode="json"))


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes (a checkpoint: which model predictions came from)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def files_digest(root: Path, files: list[Path]) -> str:
    """sha256 over the files' names (relative to ``root``), sizes and modification times: cheap, no reading."""
    h = hashlib.sha256()
    for path in sorted(files):
        st = path.stat()
        h.update(f"{path.relative_to(root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()
