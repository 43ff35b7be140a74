"""Checks on NIfTI files that SimpleITK does not make: truncation, gzip damage, NaN/inf voxels.

SimpleITK (ITK's NIfTI reader) reads a ``.nii.gz`` whose download stopped halfway without a
word, filling the missing voxels with zeros, and it turns NaN and inf voxels into 0. Both give
a plausible-looking array that silently poisons training or a prediction. So before an image
is handed to SimpleITK, the file is streamed once here: the gzip stream must end properly
(its CRC and size trailer are checked by :mod:`gzip`), the voxel block must be as long as the
header says, and a float image must hold only finite values. Streaming keeps the memory use at
one chunk, whatever the image size. Files that are not NIfTI-1 are left to their reader.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segforge.errors import ConfigError

NIFTI1_HEADER_BYTES = 348
CHUNK_BYTES = 1 << 22
#: NIfTI datatype code -> numpy dtype (without byte order)
FLOAT_DTYPES = {16: "f4", 64: "f8"}
REEXPORT_HINT = "the file is not a complete, uncorrupted image: copy it again from its source or re-export it"
NONFINITE_HINT = "replace NaN/inf voxels (e.g. with the background intensity) and save the image again"


@dataclass(frozen=True)
class NiftiLayout:
    """What the NIfTI-1 header says about the voxel block."""

    byte_order: str
    voxel_offset: int
    voxel_bytes: int
    float_dtype: str | None  # set for float images, whose voxels are checked for NaN/inf


def _parse_header(head: bytes) -> NiftiLayout | None:
    """The voxel block layout of a NIfTI-1 header, or None for anything else (NIfTI-2, other formats)."""
    if len(head) < NIFTI1_HEADER_BYTES:
        return None
    order = next((o for o in "<>" if int(np.frombuffer(head[:4], f"{o}i4")[0]) == NIFTI1_HEADER_BYTES), None)
    if order is None:
        return None
    dims = np.frombuffer(head[40:56], f"{order}i2")
    ndim = int(dims[0])
    if not 1 <= ndim <= 7 or any(int(d) < 0 for d in dims[1 : ndim + 1]):
        return None
    datatype = int(np.frombuffer(head[70:72], f"{order}i2")[0])
    bitpix = int(np.frombuffer(head[72:74], f"{order}i2")[0])
    offset = int(np.frombuffer(head[108:112], f"{order}f4")[0])
    count = int(np.prod([int(d) for d in dims[1 : ndim + 1]], dtype=np.int64))
    return NiftiLayout(order, max(offset, NIFTI1_HEADER_BYTES), count * bitpix // 8, FLOAT_DTYPES.get(datatype))


def _chunks(path: Path) -> Iterator[bytes]:
    """The decompressed bytes of ``path`` in chunks; a damaged gzip stream is a ConfigError."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            while chunk := fh.read(CHUNK_BYTES):
                yield chunk
    except EOFError:
        raise ConfigError(
            f"cannot read {path}: the file is truncated (gzip stream ends early)", REEXPORT_HINT
        ) from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise ConfigError(f"cannot read {path}: damaged gzip data ({exc})", REEXPORT_HINT) from None


class _VoxelScan:
    """Counts voxel bytes and non-finite float voxels as chunks stream past."""

    def __init__(self, layout: NiftiLayout) -> None:
        self.layout = layout
        self.seen = 0  # voxel bytes seen so far
        self.nonfinite = 0
        self._rest = b""  # bytes of a voxel split across two chunks

    def feed(self, data: bytes) -> None:
        self.seen += len(data)
        if self.layout.float_dtype is None:
            return
        data = self._rest + data
        dtype = np.dtype(self.layout.byte_order + self.layout.float_dtype)
        usable = len(data) - len(data) % dtype.itemsize
        self._rest = data[usable:]
        values = np.frombuffer(data[:usable], dtype)
        self.nonfinite += int(values.size - np.count_nonzero(np.isfinite(values)))


def _scan(path: Path) -> tuple[NiftiLayout | None, _VoxelScan | None]:
    """Stream the file once: parse the header from the first bytes, then feed the voxel bytes to a scan."""
    head, pos, layout, scan = b"", 0, None, None
    for chunk in _chunks(path):
        if len(head) < NIFTI1_HEADER_BYTES:
            head += chunk[: NIFTI1_HEADER_BYTES - len(head)]
            if len(head) == NIFTI1_HEADER_BYTES:
                layout = _parse_header(head)
                scan = _VoxelScan(layout) if layout is not None else None
        if scan is not None and layout is not None and pos + len(chunk) > layout.voxel_offset:
            scan.feed(chunk[max(layout.voxel_offset - pos, 0) :])
        pos += len(chunk)
    return layout, scan


def check_nifti_file(path: str | Path) -> None:
    """Raise a one-line ConfigError if a ``.nii``/``.nii.gz`` file is damaged, truncated or holds NaN/inf.

    Other file types return at once; their readers are trusted.
    """
    path = Path(path)
    if not path.name.endswith((".nii", ".nii.gz")) or not path.is_file():
        return
    layout, scan = _scan(path)
    if layout is None or scan is None:
        return
    if scan.seen < layout.voxel_bytes:
        raise ConfigError(
            f"cannot read {path}: the file is truncated ({scan.seen} of {layout.voxel_bytes} voxel bytes present)",
            hint=REEXPORT_HINT,
        )
    if scan.nonfinite:
        raise ConfigError(f"{path}: {scan.nonfinite} NaN/inf voxel(s)", hint=NONFINITE_HINT)


def nifti_sform_shear(path: str | Path) -> float | None:
    """How far a NIfTI-1 sform's axes are from orthogonal (max |cos| between axes), or None.

    ITK silently replaces a sheared sform by the nearest orthogonal direction, so the array it
    returns sits somewhere else in space than the file says; only the raw header shows it.
    """
    path = Path(path)
    if not path.name.endswith((".nii", ".nii.gz")) or not path.is_file():
        return None
    try:
        with (gzip.open if path.name.endswith(".gz") else open)(path, "rb") as fh:
            head = fh.read(NIFTI1_HEADER_BYTES)
    except (OSError, EOFError, zlib.error):
        return None
    layout = _parse_header(head)
    if layout is None or int(np.frombuffer(head[254:256], f"{layout.byte_order}i2")[0]) <= 0:
        return None  # no sform: ITK uses the qform, which is orthogonal by construction
    axes = np.frombuffer(head[280:328], f"{layout.byte_order}f4").reshape(3, 4)[:, :3].astype(float)
    norms = np.linalg.norm(axes, axis=0)
    if np.any(norms == 0):
        return 1.0
    unit = axes / norms
    cosines = np.abs(unit.T @ unit - np.eye(3))
    return float(cosines.max())
