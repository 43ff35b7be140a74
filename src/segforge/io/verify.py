"""Integrity check of a raw dataset (``segforge verify``, ``plan-and-preprocess --verify-dataset-integrity``).

Like nnU-Net's ``verify_dataset_integrity`` but it reports *every* problem at once, each naming
the file (relative to the dataset folder) and saying how to fix it, instead of stopping at the
first. Errors make a dataset unusable; warnings (stray files) do not. Case files are read in
worker processes, so checking a few hundred cases takes seconds.
"""

from __future__ import annotations

import gzip
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from segforge.errors import SegforgeError
from segforge.io.image_io import ImageProperties
from segforge.io.layouts import CHANNEL_RE, RawCase, RawDataset, open_raw_dataset
from segforge.io.nifti_checks import nifti_sform_shear
from segforge.io.parallel import map_cases

Severity = Literal["error", "warning"]
GEOMETRY_FIX = "resample or re-export the label in the image's geometry (same shape, spacing, origin, direction)"
#: spacings (mm) outside this range are header errors, not real scanners (2D's fake axis is exempt)
PLAUSIBLE_SPACING_MM = (1e-6, 1e3)
SHEAR_FIX = "resample the image to an orthogonal grid with the tool that made it (ITK would silently move it)"
HEADER_FIX = "fix the image header (pixdim / direction) or re-export the image from its source"


class DatasetIntegrityError(SegforgeError):
    """A raw dataset has problems that would break planning or training (exit code 1)."""


@dataclass(frozen=True)
class Problem:
    """One finding: the file (relative to the dataset folder), what is wrong and how to fix it."""

    file: str
    message: str
    fix: str
    severity: Severity = "error"

    def line(self) -> str:
        return f"{self.file}: {self.message}"


@dataclass
class VerifyReport:
    """All problems of one dataset; ``ok`` when there are no errors (warnings allowed)."""

    dataset: Path
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    num_cases: int = 0
    num_channels: int = 0
    labels: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(self, problem: Problem) -> None:
        (self.errors if problem.severity == "error" else self.warnings).append(problem)

    def summary(self) -> str:
        labels = ", ".join(f"{v}={n}" for n, v in self.labels.items())
        return f"dataset OK: {self.num_cases} cases, {self.num_channels} channel(s), labels {labels}"

    def raise_for_errors(self) -> None:
        """One-line DatasetIntegrityError naming the first problem, if there are errors."""
        if self.errors:
            first = self.errors[0]
            n = len(self.errors)
            raise DatasetIntegrityError(
                f"{n} problem{'s' if n > 1 else ''} in {self.dataset.name}: first: {first.line()}",
                hint=f"{first.fix}; `segforge verify --task {self.dataset.name}` lists them all",
            )


# -- per-case checks (run in worker processes) ----------------------------------------------------
@dataclass(frozen=True)
class CaseCheck:
    root: Path
    case: RawCase
    allowed_labels: tuple[int, ...]
    reader: Any = None  # the image IO for the dataset's file ending; None: SimpleITK
    num_channels: int = 0  # checked against what the files hold when one file may hold several


@dataclass
class CaseOutcome:
    problems: list[Problem] = field(default_factory=list)
    dims: int | None = None  # 2 or 3, from the first readable image


def _rel(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _read(
    path: Path, root: Path, out: CaseOutcome, reader: Any = None, label: bool = False
) -> tuple[np.ndarray, ImageProperties] | None:
    """An image [C, *spatial] (SimpleITK: one scalar [*spatial]) and its geometry, or None after recording why not.

    SimpleITK files are read raw, so a float label's non-integer value is reported here rather
    than refused by ``read_seg``; other image IO reads through its public ``read_images``/``read_seg``.
    """
    from segforge.errors import ConfigError
    from segforge.io.image_io import SimpleITKIO

    reader = reader if reader is not None else SimpleITKIO()
    try:
        if isinstance(reader, SimpleITKIO):
            return reader._read_scalar(path)
        return reader.read_seg(path) if label else reader.read_images([path])
    except ConfigError as exc:
        message = exc.message.replace(f"cannot read {path}", "cannot read").replace(f"{path}: ", "")
        out.problems.append(Problem(_rel(root, path), message, exc.hint or "re-export the file"))
        return None


def nifti_nonfinite_count(path: Path) -> int:
    """NaN/inf voxels counted straight from a float NIfTI-1 file.

    SimpleITK's NIfTI reader silently turns NaN and inf into 0, so the array it returns cannot
    show them; reading the voxel block ourselves can. Non-NIfTI and non-float files give 0.
    """
    name = path.name
    if not name.endswith((".nii", ".nii.gz")):
        return 0
    with (gzip.open if name.endswith(".gz") else open)(path, "rb") as fh:
        data = fh.read()
    if len(data) < 352:
        return 0
    order = next((o for o in "<>" if int(np.frombuffer(data[:4], f"{o}i4")[0]) == 348), None)
    if order is None:  # NIfTI-2 or not NIfTI at all
        return 0
    dtype = {16: "f4", 64: "f8"}.get(int(np.frombuffer(data[70:72], f"{order}i2")[0]))
    if dtype is None:
        return 0
    offset = int(np.frombuffer(data[108:112], f"{order}f4")[0])
    count = max(len(data) - offset, 0) // np.dtype(dtype).itemsize
    voxels = np.frombuffer(data, f"{order}{dtype}", count=count, offset=offset)
    return int(np.count_nonzero(~np.isfinite(voxels)))


def _header_problems(file: str, array: np.ndarray, props: ImageProperties) -> list[Problem]:
    """Spacing and direction a scanner cannot produce, and images without any signal."""
    problems = []
    low, high = PLAUSIBLE_SPACING_MM
    spacing = np.asarray(props.itk_spacing, dtype=float)
    if not np.all(np.isfinite(spacing)) or np.any(spacing < low) or np.any(spacing > high):
        problems.append(Problem(file, f"spacing {props.describe('itk_spacing')} mm is implausible", HEADER_FIX))
    n = len(props.itk_spacing)
    direction = np.asarray(props.direction, dtype=float).reshape(n, n)
    if not np.allclose(direction @ direction.T, np.eye(n), atol=1e-3):
        problems.append(Problem(file, "direction matrix is not orthonormal (sheared or scaled axes)", HEADER_FIX))
    if array.size and not np.any(array):
        problems.append(
            Problem(file, "all voxels are 0", "check the export; an empty image cannot be segmented", "warning")
        )
    return problems


def _geometry_problems(file: str, props: ImageProperties, ref: ImageProperties, ref_name: str) -> list[Problem]:
    return [
        Problem(
            file,
            f"{what} {props.describe(what)} differs from {ref_name} {ref.describe(what)}",
            GEOMETRY_FIX if "labelsTr" in file else "all channels of a case must share one geometry",
        )
        for what in props.geometry_differences(ref)
    ]


def _channel_count_problem(check: CaseCheck, held: int) -> Problem | None:
    """When files may hold several channels (RGB), what the case's files hold must be what dataset.json names."""
    if not getattr(check.reader, "packs_channels", False) or not check.num_channels or held == check.num_channels:
        return None
    files = len(check.case.images)
    return Problem(
        _rel(check.root, check.case.images[0]),
        f"case '{check.case.case_id}': its {files} file(s) hold {held} channel(s), dataset.json names "
        f"{check.num_channels}",
        "list one channel_names entry per channel the files hold (an RGB file holds 3: R, G, B)",
    )


def _check_images(check: CaseCheck, out: CaseOutcome) -> ImageProperties | None:
    root, ref, ref_file = check.root, None, ""
    held, complete = 0, True
    for channel, path in enumerate(check.case.images):
        file = _rel(root, path)
        if not path.is_file():
            out.problems.append(
                Problem(file, f"missing channel {channel} of case '{check.case.case_id}'", "add the channel file")
            )
            complete = False
            continue
        read = _read(path, root, out, check.reader)
        if read is None:
            complete = False
            continue
        array, props = read
        held += array.shape[0] if array.ndim > len(props.shape) else 1
        out.dims = out.dims or (2 if props.is_2d else 3)
        bad = int(np.count_nonzero(~np.isfinite(array))) or nifti_nonfinite_count(path)
        if bad:
            out.problems.append(Problem(file, f"{bad} NaN/inf voxel(s)", "replace NaN/inf values in the image"))
        out.problems.extend(_header_problems(file, array, props))
        if (nifti_sform_shear(path) or 0.0) > 1e-3:
            out.problems.append(Problem(file, "sform matrix is not orthogonal (sheared axes)", SHEAR_FIX))
        if ref is None:
            ref, ref_file = props, file
        else:
            out.problems.extend(_geometry_problems(file, props, ref, ref_file))
    if complete and (problem := _channel_count_problem(check, held)) is not None:
        out.problems.append(problem)
    return ref


def _check_label(check: CaseCheck, ref: ImageProperties | None, ref_file: str, out: CaseOutcome) -> None:
    label = check.case.label
    if label is None:
        return
    file = _rel(check.root, label)
    if not label.is_file():
        out.problems.append(Problem(file, f"missing label of case '{check.case.case_id}'", "add the label file"))
        return
    read = _read(label, check.root, out, check.reader, label=True)
    if read is None:
        return
    array, props = read
    if np.issubdtype(array.dtype, np.floating) and not np.array_equal(array, np.round(array)):
        bad = array[array != np.round(array)].flat[0]
        out.problems.append(Problem(file, f"non-integer label value {float(bad):g}", "labels must be whole numbers"))
        return
    undeclared = sorted(set(np.unique(array).tolist()) - set(check.allowed_labels))
    if undeclared:
        shown = ", ".join(f"{v:g}" for v in undeclared[:5])
        out.problems.append(
            Problem(
                file,
                f"label value(s) {shown} not declared in dataset.json",
                f"declared values are {', '.join(map(str, check.allowed_labels))}; fix the label or dataset.json",
            )
        )
    if ref is not None:
        out.problems.extend(_geometry_problems(file, props, ref, ref_file))
    if not np.any(array):
        out.problems.append(
            Problem(file, "no foreground (only background)", "check it is the right label file", "warning")
        )


def check_case(check: CaseCheck) -> CaseOutcome:
    """All per-case checks: files present, readable, finite, co-registered, declared labels."""
    out = CaseOutcome()
    ref = _check_images(check, out)
    ref_file = _rel(check.root, check.case.images[0]) if check.case.images else ""
    _check_label(check, ref, ref_file, out)
    return out


# -- dataset-level checks --------------------------------------------------------------------------
def _folder_problems(ds: RawDataset, report: VerifyReport) -> None:
    images = ds.images_folder
    if not images.is_dir() or not any(p for p in images.iterdir() if not p.name.startswith(".")):
        report.add(
            Problem("imagesTr", "no training images", "put the images in imagesTr as CASE_0000" + ds.file_ending)
        )
    if not ds.labels_folder.is_dir() or not any(p for p in ds.labels_folder.iterdir() if not p.name.startswith(".")):
        report.add(
            Problem("labelsTr", "no labels at all", "put one label per case in labelsTr as CASE" + ds.file_ending)
        )
    if len(ds.cases) != ds.dataset_json.num_training:
        report.add(
            Problem(
                "dataset.json",
                f"numTraining is {ds.dataset_json.num_training} but {len(ds.cases)} training case(s) are listed",
                f"set numTraining to {len(ds.cases)}",
            )
        )
    for case_id, count in Counter(c.case_id for c in ds.cases).items():
        if count > 1:
            report.add(Problem("dataset.json", f"case '{case_id}' is listed {count} times", "remove the duplicates"))


def _stray_files(ds: RawDataset, report: VerifyReport) -> None:
    expected = {p for c in ds.cases + ds.test_cases for p in c.images}
    expected |= {c.label for c in ds.cases if c.label is not None}
    for folder in (ds.images_folder, ds.labels_folder, ds.test_folder):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.name.startswith(".") or path in expected:
                continue
            message, fix = _stray_reason(ds, path, folder == ds.labels_folder)
            report.add(Problem(_rel(ds.path, path), message, fix, "warning"))


def _stray_reason(ds: RawDataset, path: Path, is_label: bool) -> tuple[str, str]:
    """Why a file in a dataset folder belongs to no case, and the rename or removal that fixes it."""
    ending, n = ds.file_ending, ds.num_channels
    stem = path.name[: -len(ending)] if path.name.endswith(ending) else None
    known = {c.case_id for c in ds.cases + ds.test_cases}
    if stem is None:
        return f"does not end with the dataset's file ending {ending}", f"remove it, or convert it to {ending}"
    match = CHANNEL_RE.match(stem)
    if is_label:
        return (
            "label of no case listed in dataset.json",
            f"remove it, or add its image(s) {stem}_0000{ending} and list it",
        )
    if match and match["case"] in known and int(match["channel"]) >= n:
        return (
            f"channel {int(match['channel'])} but dataset.json declares {n} channel(s)",
            "remove the extra channel file, or add the channel to dataset.json's modality/channel_names",
        )
    if match is None:
        return (
            "not part of any case listed in dataset.json: no _0000 channel suffix",
            f"rename it to {stem}_0000{ending} (one file per channel)",
        )
    return (
        "not part of any case listed in dataset.json",
        f"add its label labelsTr/{match['case']}{ending} and list the case in dataset.json, or remove it",
    )


def _dimension_problems(ds: RawDataset, outcomes: list[CaseOutcome], report: VerifyReport) -> None:
    dims = Counter(o.dims for o in outcomes if o.dims is not None)
    if len(dims) < 2:
        return
    majority = dims.most_common(1)[0][0]
    for case, outcome in zip(ds.cases + ds.test_cases, outcomes, strict=True):
        if outcome.dims is not None and outcome.dims != majority:
            report.add(
                Problem(
                    _rel(ds.path, case.images[0]),
                    f"{outcome.dims}D image in a dataset of {majority}D images",
                    "all cases must be either 2D or 3D",
                )
            )


def _reader_for(ds: RawDataset, report: VerifyReport) -> Any:
    """The image IO registered for the dataset's file ending; SimpleITK (and a reported problem) when none is.

    Verify needs no plugin component, so a plugin that failed to load does not stop it: the
    components that did load (the builtins at least) are asked.
    """
    from segforge.errors import ConfigError
    from segforge.io.image_io import image_io_for
    from segforge.plugins import get_manager

    try:
        return image_io_for(ds.file_ending, get_manager().registries)
    except ConfigError as exc:
        report.add(Problem("dataset.json", f"file_ending {ds.file_ending}: {exc.message}", exc.hint or ""))
        return None


def verify_dataset(ds: RawDataset, num_processes: int = 2, show_progress: bool = False) -> VerifyReport:
    """Check ``ds`` completely and return every problem found (does not raise; see ``raise_for_errors``)."""
    dj = ds.dataset_json
    report = VerifyReport(ds.path, num_cases=len(ds.cases), num_channels=ds.num_channels, labels=dj.label_values())
    _folder_problems(ds, report)
    _stray_files(ds, report)
    allowed = tuple(sorted(dj.allowed_label_values()))
    reader = _reader_for(ds, report)
    checks = [CaseCheck(ds.path, case, allowed, reader, ds.num_channels) for case in ds.cases + ds.test_cases]
    outcomes = map_cases(check_case, checks, num_processes, f"verifying {ds.name}", show_progress)
    for outcome in outcomes:
        for problem in outcome.problems:
            report.add(problem)
    _dimension_problems(ds, outcomes, report)
    return report


def verify_folder(path: str | os.PathLike[str], num_processes: int = 2, show_progress: bool = False) -> VerifyReport:
    """Like :func:`verify_dataset`, but an unreadable or invalid dataset.json becomes a reported problem."""
    from segforge.errors import ConfigError

    path = Path(path)
    try:
        ds = open_raw_dataset(path)
    except ConfigError as exc:
        report = VerifyReport(path)
        message = exc.message
        for prefix in (f"{path / 'dataset.json'}: ", f"{path / 'dataset.json'} "):
            message = message.replace(prefix, "")
        report.add(Problem("dataset.json", message, exc.hint or "fix dataset.json"))
        return report
    return verify_dataset(ds, num_processes, show_progress)
