"""Atomic file writes: a temporary file in the same folder, fsync, then rename.

A reader (or a re-run after a crash) therefore sees either the previous complete file or
the new complete file under the final name, never a half-written one. Temporary files are
named ``.<name>.<random>.tmp`` so an interrupted write is recognisable and ignorable.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TMP_SUFFIX = ".tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike[str], suffix: str = "", *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; on success rename it into place.

    Use for writers that need a file name (SimpleITK, torch.save, numpy). ``suffix`` keeps a
    file ending a writer may need (e.g. ``".nii.gz"``). On error the temporary is removed.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    # the writer's ending must come last (SimpleITK picks its writer from it): .<name>.<random>.tmp<suffix>
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=TMP_SUFFIX + suffix, dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; final files get the usual mode
    try:
        yield tmp_path
        if fsync:  # fsync=False: still atomic for crashes of the process, not durable on power loss
            with open(tmp_path, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp_path, final)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            from segforge.resources import os_error

            raise os_error(exc, final) from exc  # name the final file, not the temporary
        raise


def atomic_write_bytes(final: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(final) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(final: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(final, text.encode("utf-8"))


def atomic_write_json(final: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON (plain data only: no NaN, sorted keys kept as given)."""
    atomic_write_text(final, json.dumps(obj, indent=2, allow_nan=False) + "\n")


def remove_interrupted_writes(final: str | os.PathLike[str]) -> int:
    """Delete the temporaries a killed writer of ``final`` left (``.<name>.<random>.tmp*``); returns how many.

    A SIGKILL mid-write leaves the temporary beside the untouched final file. Call this only
    where no other process can be writing ``final`` at the same moment (a re-run's own files).
    """
    final = Path(final)
    prefix = f".{final.name}."
    if not final.parent.is_dir():
        return 0
    removed = 0
    for path in final.parent.iterdir():
        if path.name.startswith(prefix) and TMP_SUFFIX in path.name[len(prefix) :] and path.is_file():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
    return removed
