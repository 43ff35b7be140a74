"""Memory and disk limits: fail with a clear message instead of an OOM kill or a half-written file.

A case whose resampled size does not fit in memory would otherwise be killed by the kernel
mid-run (no message, sometimes a frozen machine). Before preprocessing or predicting, segforge
estimates the bytes each case needs from its header alone (shape, spacing, channels, classes)
and compares them with the limit: ``SEGFORGE_MAX_MEMORY_GB`` if set, else the memory the
kernel reports as available (``/proc/meminfo``, or ``os.sysconf`` elsewhere). The estimates
are deliberately rough upper bounds of the big arrays; the variable overrides a wrong guess.

Disk-full and permission problems arrive as ``OSError`` from deep inside a writer;
:func:`os_error` turns them into one-line errors that name the file and the fix.
"""

from __future__ import annotations

import errno
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from segforge.errors import ConfigError, SegforgeError

MAX_MEMORY_ENV = "SEGFORGE_MAX_MEMORY_GB"
GIB = 1024**3
FLOAT_BYTES = 4


class ResourceError(SegforgeError):
    """A case needs more memory or disk than there is (exit code 1)."""


class DiskFullError(ResourceError):
    """A write failed because the disk (or the user's quota) is full."""


@dataclass(frozen=True)
class MemoryLimit:
    """The bytes one run may use and where that number comes from (for the message)."""

    bytes: int
    source: str


def available_memory_bytes() -> int | None:
    """Memory the kernel can hand out now (MemAvailable), or None when it cannot be found."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def memory_limit() -> MemoryLimit | None:
    """``SEGFORGE_MAX_MEMORY_GB`` when set (validated), else the available memory; None if unknown."""
    text = os.environ.get(MAX_MEMORY_ENV, "").strip()
    if text:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value <= 0:
            raise ConfigError(
                f"{MAX_MEMORY_ENV}={text!r} is not a positive number of GiB",
                hint=f"set e.g. {MAX_MEMORY_ENV}=16, or unset it to use the available memory",
            )
        return MemoryLimit(int(value * GIB), f"{MAX_MEMORY_ENV}={text}")
    available = available_memory_bytes()
    return None if available is None else MemoryLimit(available, "available memory")


def header_geometry(path: str | os.PathLike[str]) -> tuple[tuple[int, ...], tuple[float, ...]] | None:
    """(shape, spacing) in array order (z, y, x) from the file header only; None if SimpleITK cannot tell."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return None  # the reader proper reports unreadable files with its own message
    size, spacing = reader.GetSize(), reader.GetSpacing()
    return tuple(int(s) for s in size[::-1][-3:]), tuple(float(s) for s in spacing[::-1][-3:])


def resampled_voxels(
    shape: Sequence[int], spacing: Sequence[float], target: Sequence[float], transpose: Sequence[int]
) -> int:
    """Voxels of ``shape`` resampled to ``target`` (which is in transposed order, as in the plans)."""
    if len(shape) != len(target):  # 2D configurations keep the first axis as is
        shape, spacing = shape[-len(target) :], spacing[-len(target) :]
        transpose = [t - (3 - len(target)) for t in transpose if t >= 3 - len(target)]
    order = [shape[t] for t in transpose] if len(transpose) == len(shape) else list(shape)
    spacing_t = [spacing[t] for t in transpose] if len(transpose) == len(spacing) else list(spacing)
    return math.prod(max(1, round(n * s / t)) for n, s, t in zip(order, spacing_t, target, strict=True))


def preprocess_bytes(original: int, resampled: int, channels: int) -> int:
    """Image read as float32, resampled (float64 intermediates), and the segmentation beside it."""
    return FLOAT_BYTES * channels * original + 2 * FLOAT_BYTES * channels * resampled + 2 * (original + resampled)


def predict_bytes(original: int, resampled: int, channels: int, classes: int) -> int:
    """Input, logits and weight accumulators at the network's spacing, then logits resampled back."""
    return FLOAT_BYTES * ((channels + classes + 1) * resampled + (classes + 1) * original)


def check_memory(needed: int, what: str, fixes: str) -> None:
    """Raise a ResourceError when ``needed`` bytes exceed the configured/available memory."""
    limit = memory_limit()
    if limit is None or needed <= limit.bytes:
        return
    raise ResourceError(
        f"{what} needs about {needed / GIB:.1f} GiB of memory but the limit is {limit.bytes / GIB:.1f} GiB "
        f"({limit.source})",
        hint=f"{fixes}; or set {MAX_MEMORY_ENV} to the GiB this run may use if the estimate is too cautious",
    )


def os_error(exc: OSError, path: str | os.PathLike[str] | None = None) -> SegforgeError:
    """A one-line SegforgeError for an OSError met while reading or writing ``path``."""
    where = str(path if path is not None else exc.filename or "a file")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(
            f"disk full while writing {where}",
            hint="free space on that disk (or point SEGFORGE_PREPROCESSED / SEGFORGE_RESULTS / -o elsewhere) and "
            "re-run; complete files are kept and skipped",
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return ResourceError(f"permission denied: {where}", hint="choose a folder you can write to, or fix its rights")
    if exc.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        return ResourceError(
            f"{where}: {exc.strerror or 'a file is in the way'}",
            hint="a file stands where a folder is needed (or the reverse): remove it or choose another path",
        )
    return ResourceError(
        f"{where}: {exc.strerror or exc}", hint="check the path and the disk; SEGFORGE_DEBUG=1 shows the traceback"
    )


def case_label(paths: Sequence[os.PathLike[str] | str]) -> str:
    return Path(paths[0]).name if paths else "case"
