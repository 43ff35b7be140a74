"""Finding the DICOM series in a folder, choosing one, ordering its slices and working out its grid.

A scanner export is a folder of single-slice files with no order in their names, often more
than one series (a topogram beside the axial CT, or two reconstructions). Only the headers say
which slice goes where: slices are grouped by SeriesInstanceUID, sorted by their position
along the slice normal (ImagePositionPatient projected on the cross product of the two
ImageOrientationPatient axes, the order GDCM and dcm2niix use, independent of file names and
InstanceNumber), and the series is accepted only when the result is a regular grid: one
orientation, one pixel spacing, equal steps between slices. A missing slice shows up as one
step twice as long; reading it anyway would stretch half the volume, so it is refused, as are
duplicate positions and sheared stacks (gantry tilt). Headers are read with pydicom without
pixel data, so checking a folder costs milliseconds per file.

Every refusal is a one-line :class:`~segforge.errors.ConfigError` naming the folder and series.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from segforge.errors import ConfigError

#: relative tolerance on slice steps (1 %), with an absolute floor in mm
STEP_RTOL, STEP_ATOL = 0.01, 1e-3
#: how far (mm) a slice may sit off the stack's normal line, and how much orientations may differ
SHEAR_ATOL, ORIENTATION_ATOL = 1e-2, 1e-4
NO_UID = "(no SeriesInstanceUID)"


@dataclass(frozen=True)
class SliceHeader:
    """What ordering and geometry need from one slice file."""

    path: Path
    position: tuple[float, float, float]
    orientation: tuple[float, ...]
    pixel_spacing: tuple[float, float]
    rows: int
    columns: int
    frames: int


@dataclass(frozen=True)
class Series:
    """One image series of a folder; ``slices`` are in file-name order until :func:`ordered_slices` sorts them."""

    folder: Path
    uid: str
    description: str
    modality: str
    slices: tuple[SliceHeader, ...]

    @property
    def name(self) -> str:
        """How messages name the series: its UID and description (what a PACS viewer shows)."""
        desc = f" '{self.description}'" if self.description else ""
        return f"{self.uid or NO_UID}{desc} ({len(self.slices)} {self.modality or 'image'} slices)"

    def matches(self, selector: str) -> bool:
        return selector in (self.uid, self.description)


@dataclass(frozen=True)
class Grid:
    """A series as a regular grid, in SimpleITK order (x, y, z), and its slice files bottom-up along the normal."""

    files: tuple[Path, ...]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]
    size: tuple[int, int, int]


def _floats(value: Any, n: int) -> tuple[float, ...] | None:
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return out if len(out) == n else None


def _header(path: Path) -> tuple[Any, SliceHeader | None] | None:
    """(dataset, slice) for an image slice, (dataset, None) for a DICOM object without a grid, None for non-DICOM."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as exc:  # noqa: BLE001 - a damaged DICOM file of any kind is named, not skipped
        with open(path, "rb") as fh:
            marked = fh.read(132)[128:132] == b"DICM"
        if isinstance(exc, InvalidDicomError) and not marked:
            return None  # no DICOM marker: a note or a thumbnail beside the slices, not ours
        cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{path}: damaged DICOM file ({cause})", hint="re-copy or re-export the series") from None
    position = _floats(ds.get("ImagePositionPatient"), 3)
    orientation = _floats(ds.get("ImageOrientationPatient"), 6)
    spacing = _floats(ds.get("PixelSpacing"), 2)
    if position is None or orientation is None or spacing is None or "Rows" not in ds:
        return ds, None  # DICOMDIR, a report, a SEG/RTSTRUCT object, a multi-frame without per-file positions
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    return ds, SliceHeader(path, position, orientation, spacing, int(ds.Rows), int(ds.Columns), frames)  # type: ignore[arg-type]


def scan_folder(folder: Path) -> list[Series]:
    """Every image series in ``folder`` (files directly inside it), in UID order; non-DICOM files are ignored."""
    groups: dict[str, list[SliceHeader]] = {}
    info: dict[str, tuple[str, str]] = {}
    files = sorted(p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith("."))
    for path in files:
        found = _header(path)
        if found is None or found[1] is None:
            continue
        ds, header = found
        uid = str(ds.get("SeriesInstanceUID", "") or "")
        groups.setdefault(uid, []).append(header)
        info.setdefault(uid, (str(ds.get("SeriesDescription", "") or ""), str(ds.get("Modality", "") or "")))
    return [Series(Path(folder), uid, info[uid][0], info[uid][1], tuple(groups[uid])) for uid in sorted(groups)]


def has_dicom_images(folder: Path) -> bool:
    """True when ``folder`` holds at least one DICOM image slice (stops at the first one found)."""
    for path in sorted(p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith(".")):
        found = _header(path)
        if found is not None and found[1] is not None:
            return True
    return False


def choose_series(folder: Path, series: list[Series], selector: str | None) -> Series:
    """The one series to read: the only one, or the one ``selector`` names (UID or description)."""
    if not series:
        raise ConfigError(f"{folder}: no DICOM image series found", hint="pass the folder holding the slice files")
    listing = "; ".join(s.name for s in series)
    if selector is not None:
        chosen = [s for s in series if s.matches(selector)]
        if len(chosen) == 1:
            return chosen[0]
        what = "no series" if not chosen else f"{len(chosen)} series"
        raise ConfigError(
            f"{folder}: {what} with SeriesInstanceUID or SeriesDescription '{selector}' (found: {listing})",
            hint="select the series by its full SeriesInstanceUID (`segforge dicom series FOLDER` lists them)",
        )
    if len(series) > 1:
        raise ConfigError(
            f"{folder} holds {len(series)} DICOM series: {listing}",
            hint="keep one series per case folder, or select one by UID or description "
            "(`segforge dicom predict --series ...`, or the image IO's `series` setting)",
        )
    return series[0]


def _axes(orientation: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    row, col = np.asarray(orientation[:3]), np.asarray(orientation[3:])
    return row, col, np.cross(row, col)


def ordered_grid(series: Series) -> Grid:
    """The series' slices sorted along the normal and its regular grid; refuses anything that is not one."""
    slices, where = series.slices, f"{series.folder}: series {series.name}"
    first = slices[0]
    if any(s.frames > 1 for s in slices):
        raise ConfigError(f"{where} is a multi-frame (enhanced) object", hint="export the series as single-slice files")
    for s in slices[1:]:
        if (s.rows, s.columns) != (first.rows, first.columns):
            raise ConfigError(
                f"{where}: {s.path.name} is {s.rows}x{s.columns}, {first.path.name} {first.rows}x{first.columns}",
                hint="the slices of one series must have one size",
            )
        if not np.allclose(s.orientation, first.orientation, atol=ORIENTATION_ATOL):
            raise ConfigError(f"{where}: {s.path.name} has another ImageOrientationPatient than {first.path.name}",
                              hint="a series must be one stack of parallel slices (split localizers out)")  # fmt: skip
        if not np.allclose(s.pixel_spacing, first.pixel_spacing, rtol=STEP_RTOL):
            raise ConfigError(f"{where}: {s.path.name} has another PixelSpacing than {first.path.name}",
                              hint="the slices of one series must share their pixel spacing")  # fmt: skip
    row, col, normal = _axes(first.orientation)
    depth = np.array([np.dot(s.position, normal) for s in slices])
    order = np.argsort(depth, kind="stable")
    slices, depth = tuple(slices[i] for i in order), depth[order]
    steps = np.diff(depth)
    if len(steps) and steps.min() <= STEP_ATOL:
        i = int(np.argmin(steps))
        raise ConfigError(
            f"{where}: {slices[i].path.name} and {slices[i + 1].path.name} share one slice position",
            hint="the folder holds a slice twice, or two series with one UID: remove the duplicates",
        )
    step = float(np.median(steps)) if len(steps) else 1.0
    if len(steps) and not np.allclose(steps, step, rtol=STEP_RTOL, atol=STEP_ATOL):
        i = int(np.argmax(np.abs(steps - step)))
        raise ConfigError(
            f"{where}: slice spacing is not uniform ({steps[i]:g} mm between {slices[i].path.name} and "
            f"{slices[i + 1].path.name}, {step:g} mm elsewhere): a slice is missing",
            hint="export the complete series again (every slice), then retry",
        )
    origin = np.asarray(slices[0].position)
    lateral = [np.abs(np.dot(np.asarray(s.position) - origin, axis)).max() for axis in (row, col) for s in slices]
    if max(lateral) > SHEAR_ATOL:
        raise ConfigError(
            f"{where}: the slices do not lie on one line along the slice normal (gantry tilt?)",
            hint="resample the series to an untilted grid with your scanner software or dcm2niix",
        )
    if len(slices) == 1:
        step = float(_slice_thickness(slices[0].path) or 1.0)
    direction = np.stack([row, col, normal], axis=1)  # columns: the x, y, z axes in patient space
    return Grid(
        files=tuple(s.path for s in slices),
        spacing=(first.pixel_spacing[1], first.pixel_spacing[0], step),  # PixelSpacing is (row step, column step)
        origin=tuple(float(v) for v in origin),  # type: ignore[arg-type]
        direction=tuple(float(v) for v in direction.ravel()),
        size=(first.columns, first.rows, len(slices)),
    )


def _slice_thickness(path: Path) -> float | None:
    import pydicom

    value = pydicom.dcmread(path, stop_before_pixels=True).get("SliceThickness")
    try:
        return float(value) if value not in (None, "") and float(value) > 0 else None
    except (TypeError, ValueError):
        return None


def series_grid(folder: Path, selector: str | None = None) -> tuple[Series, Grid]:
    """The chosen series of ``folder`` and its checked grid (headers only: no pixel data is read)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: not a folder", hint="pass the folder holding one series' slice files")
    series = choose_series(folder, scan_folder(folder), selector)
    return series, ordered_grid(series)
