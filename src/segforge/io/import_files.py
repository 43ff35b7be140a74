"""Writing one imported case: each output file linked, copied or converted, atomically.

Plain-data jobs (:class:`FileJob`) so they can run in worker processes. A file is *converted*
(read and written through the registered image IO) only when its content must change: a label
map (0/255 -> 0/1), a mask applied to an image (BraTS' z-scored background -> 0), or another
file ending than the dataset's (DRIVE's GIF labels). Everything else is symlinked or copied as
is, so the dataset keeps the source's bytes. Every write goes to a temporary name first; a file
under its final name is complete, which is what makes a re-run skip it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from segforge.atomic import atomic_path
from segforge.errors import ConfigError, SegforgeError

Action = Literal["link", "copy", "label", "image"]
#: the key of a label map that catches every value not listed (``*=0``)
OTHER_VALUES = "*"


@dataclass(frozen=True)
class FileJob:
    """One output file: where it comes from and how it is made.

    ``action``: ``link`` / ``copy`` as is; ``label``: read as a segmentation, values mapped by
    ``label_map``; ``image``: read as an image, zeroed outside ``mask`` when given, written in the
    output's format.
    """

    action: Action
    src: Path
    dst: Path
    label_map: tuple[tuple[str, int], ...] = ()
    mask: Path | None = None


@dataclass
class CaseOutcome:
    written: int = 0
    skipped: int = 0
    error: tuple[str, str | None] | None = None  # (message, hint): hints do not survive pickling


@dataclass(frozen=True)
class CaseJob:
    case_id: str
    files: tuple[FileJob, ...] = field(default_factory=tuple)


def _link(src: Path, dst: Path) -> None:
    """A symlink to the absolute source, made under a temporary name and renamed into place."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.link.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(src.resolve(), tmp)
    os.replace(tmp, dst)


def _copy(src: Path, dst: Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def map_labels(seg: np.ndarray, label_map: dict[str, int], path: Path) -> np.ndarray:
    """``seg`` with every value replaced as ``label_map`` says; a value the map lacks is an error."""
    values = np.unique(seg)
    lookup = {int(k): v for k, v in label_map.items() if k != OTHER_VALUES}
    other = label_map.get(OTHER_VALUES)
    unknown = [int(v) for v in values if int(v) not in lookup and other is None]
    if unknown:
        shown, known = ", ".join(map(str, unknown[:5])), ", ".join(f"{k}={v}" for k, v in lookup.items())
        raise ConfigError(
            f"{path}: label value(s) {shown} are not in the label map ({known})",
            hint=f"add them to --label-map (e.g. {unknown[0]}=1), or map every other value with '*=0'",
        )
    out = np.full(seg.shape, 0 if other is None else other, dtype=np.int32)
    for value in values:
        if int(value) in lookup:
            out[seg == value] = lookup[int(value)]
    return out


def _convert_label(job: FileJob) -> None:
    from segforge.io.image_io import image_io_for

    seg, props = image_io_for(job.src).read_seg(job.src)
    mapped = map_labels(seg[0], dict(job.label_map), job.src) if job.label_map else seg[0]
    image_io_for(job.dst).write_seg(mapped, job.dst, props)


def _convert_image(job: FileJob) -> None:
    from segforge.io.image_io import image_io_for

    data, props = image_io_for(job.src).read_images([job.src])
    if job.mask is not None:
        mask, mask_props = image_io_for(job.mask).read_seg(job.mask)
        if diffs := props.geometry_differences(mask_props):
            raise ConfigError(
                f"{job.mask}: the mask differs from {job.src} in {', '.join(diffs)}",
                hint="the mask must be on the image's grid (same shape, spacing, origin, direction)",
            )
        data[:, ~(mask[0] > 0)] = 0
    from segforge.io.natural_image import NaturalImage2DIO

    writer = image_io_for(job.dst)
    if isinstance(writer, NaturalImage2DIO):  # 8/16-bit pixels stay integers: PNG/BMP/GIF and RGB need them
        data = _integer_if_exact(data)
    if data.shape[0] == 1:
        writer.write_image(data[0], job.dst, props, dtype=None)
    else:  # a multi-component image (RGB) written by an IO that takes channels first
        writer.write_image(data, job.dst, props, dtype=None)


def _integer_if_exact(data: np.ndarray) -> np.ndarray:
    """Float pixels that are whole numbers within uint8 (or uint16) as that type; others unchanged."""
    if not np.issubdtype(data.dtype, np.floating) or data.size == 0 or not np.array_equal(data, np.round(data)):
        return data
    low, high = float(data.min()), float(data.max())
    if low >= 0 and high <= 255:
        return data.astype(np.uint8)
    return data.astype(np.uint16) if low >= 0 and high <= 65535 else data


def write_file(job: FileJob) -> bool:
    """Make ``job.dst``; False when it already exists under its final name (complete, see module doc)."""
    if job.dst.is_symlink() or job.dst.exists():
        if job.action != "link" or os.path.realpath(job.dst) == os.path.realpath(job.src):
            return False
    if not job.src.is_file():
        raise ConfigError(f"{job.src}: file not found", hint="the source folder changed during the import; re-run it")
    if job.action == "link":
        _link(job.src, job.dst)
    elif job.action == "copy":
        _copy(job.src, job.dst)
    elif job.action == "label":
        _convert_label(job)
    else:
        _convert_image(job)
    return True


def write_case(job: CaseJob) -> CaseOutcome:
    """All files of one case; a segforge error comes back as a value (message, hint)."""
    outcome = CaseOutcome()
    try:
        for file in job.files:
            if write_file(file):
                outcome.written += 1
            else:
                outcome.skipped += 1
    except SegforgeError as exc:
        outcome.error = (exc.message, exc.hint)
    except OSError as exc:
        outcome.error = (f"case '{job.case_id}': {exc}", "check free disk space and permissions")
    return outcome
