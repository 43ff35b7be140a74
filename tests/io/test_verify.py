"""verify_dataset: every kind of broken dataset gives a problem naming the file and a fix."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from segforge.io.layouts import open_raw_dataset
from segforge.io.verify import DatasetIntegrityError, verify_dataset, verify_folder
from segforge.testing.synthetic import make_task

SHAPE = (6, 8, 7)


def _edit_image(path: Path, array: np.ndarray | None = None, **geometry: object) -> None:
    """Rewrite ``path`` with new voxels and/or geometry (spacing=, origin=, direction=)."""
    old = sitk.ReadImage(str(path))
    new = sitk.GetImageFromArray(sitk.GetArrayFromImage(old) if array is None else array)
    new.SetSpacing(geometry.get("spacing", old.GetSpacing()))
    new.SetOrigin(geometry.get("origin", old.GetOrigin()))
    new.SetDirection(geometry.get("direction", old.GetDirection()))
    sitk.WriteImage(new, str(path), True)


def _edit_json(folder: Path, fn: Callable[[dict], object]) -> None:
    info = json.loads((folder / "dataset.json").read_text())
    fn(info)
    (folder / "dataset.json").write_text(json.dumps(info))


def _label(folder: Path, case: str = "case_001") -> Path:
    return folder / "labelsTr" / f"{case}.nii.gz"


def _float_label(value: float) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        seg = sitk.GetArrayFromImage(sitk.ReadImage(str(_label(folder)))).astype(np.float32)
        seg[0, 0, 0] = value
        _edit_image(_label(folder), seg)

    return edit


def _nan_image(folder: Path) -> None:
    image = folder / "imagesTr" / "case_001_0000.nii.gz"
    data = sitk.GetArrayFromImage(sitk.ReadImage(str(image)))
    data[1, 2, 3] = np.nan
    _edit_image(image, data)


def _empty_images(folder: Path) -> None:
    for path in (folder / "imagesTr").iterdir():
        path.unlink()


def _label_2d(folder: Path) -> None:
    for path in [_label(folder), *sorted((folder / "imagesTr").glob("case_001_*"))]:
        image = sitk.GetImageFromArray(sitk.GetArrayFromImage(sitk.ReadImage(str(path)))[0])
        sitk.WriteImage(image, str(path), True)


LABEL = "labelsTr/case_001.nii.gz"
ROTATED = (0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0)

#: (name, edit of a fresh 3-case, 2-channel v1 dataset with one test case, file, message part, severity)
BROKEN: list[tuple[str, Callable[[Path], object], str, str, str]] = [
    ("missing label", lambda f: _label(f).unlink(), LABEL, "missing label", "error"),
    ("missing channel", lambda f: (f / "imagesTr/case_001_0001.nii.gz").unlink(),
     "imagesTr/case_001_0001.nii.gz", "missing channel 1", "error"),
    ("spacing", lambda f: _edit_image(_label(f), spacing=(1.5, 1.0, 9.0)), LABEL, "spacing", "error"),
    ("origin", lambda f: _edit_image(_label(f), origin=(0.0, 0.0, 0.0)), LABEL, "origin", "error"),
    ("direction", lambda f: _edit_image(_label(f), direction=ROTATED), LABEL, "direction", "error"),
    ("shape", lambda f: _edit_image(_label(f), np.zeros((6, 8, 9), np.uint8)), LABEL, "shape (6, 8, 9)", "error"),
    ("channel geometry", lambda f: _edit_image(f / "imagesTr/case_002_0001.nii.gz", origin=(5.0, 5.0, 5.0)),
     "imagesTr/case_002_0001.nii.gz", "origin", "error"),
    ("undeclared label", _float_label(5.0), LABEL, "label value(s) 5 not declared", "error"),
    ("non-integer label", _float_label(0.5), LABEL, "non-integer label value 0.5", "error"),
    ("nan image", _nan_image, "imagesTr/case_001_0000.nii.gz", "1 NaN/inf voxel(s)", "error"),
    ("invalid json", lambda f: (f / "dataset.json").write_text("{oops"), "dataset.json", "not valid JSON", "error"),
    ("missing key", lambda f: _edit_json(f, lambda d: d.pop("numTraining")), "dataset.json",
     "numTraining: Field required", "error"),
    ("wrong type", lambda f: _edit_json(f, lambda d: d.update(labels=["background"])), "dataset.json",
     "labels: Input should be a valid dictionary", "error"),
    ("labels not consecutive", lambda f: _edit_json(f, lambda d: d["labels"].update({"4": "extra"})),
     "dataset.json", "consecutive 0..4; missing [3]", "error"),
    ("empty imagesTr", _empty_images, "imagesTr", "no training images", "error"),
    ("stray file", lambda f: (f / "imagesTr/leftover.nii.gz").write_bytes(b"x"), "imagesTr/leftover.nii.gz",
     "not part of any case", "warning"),
    ("path escaping", lambda f: _edit_json(f, lambda d: d["training"][0].update(image="../other/case_000.nii.gz")),
     "dataset.json", "points outside the dataset folder", "error"),
    ("test image missing channel", lambda f: (f / "imagesTs/case_003_0001.nii.gz").unlink(),
     "imagesTs/case_003_0001.nii.gz", "missing channel 1", "error"),
    ("numTraining wrong", lambda f: _edit_json(f, lambda d: d.update(numTraining=4)), "dataset.json",
     "numTraining is 4 but 3", "error"),
    ("corrupt label", lambda f: _label(f).write_bytes(b"garbage"), LABEL, "cannot read", "error"),
    ("2d among 3d", _label_2d, "imagesTr/case_001_0000.nii.gz", "2D image in a dataset of 3D images", "error"),
]  # fmt: skip


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return make_task(tmp_path / "Task100_Synth", n_cases=3, shape=SHAPE, channels=2, n_test=1, seed=1)


def test_clean_dataset_is_ok(dataset: Path) -> None:
    report = verify_dataset(open_raw_dataset(dataset), num_processes=1)
    assert report.errors == [] and report.warnings == []
    assert report.summary() == "dataset OK: 3 cases, 2 channel(s), labels 0=background, 1=inner, 2=core"
    report.raise_for_errors()  # no error


@pytest.mark.parametrize(("edit", "file", "text", "severity"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_broken_dataset_names_the_file(dataset: Path, edit, file: str, text: str, severity: str) -> None:
    edit(dataset)
    report = verify_folder(dataset, num_processes=1)
    found = report.errors if severity == "error" else report.warnings
    matching = [p for p in found if p.file == file and text in p.message]
    assert matching, f"no {severity} on {file} containing {text!r}: {report.errors + report.warnings}"
    assert all(p.fix for p in report.errors + report.warnings)
    if severity == "warning":
        assert report.errors == []


def test_all_problems_reported_at_once_and_summarized(dataset: Path) -> None:
    _label(dataset).unlink()
    _nan_image(dataset)
    (dataset / "imagesTr" / "case_002_0001.nii.gz").unlink()
    report = verify_folder(dataset, num_processes=2)
    assert {p.file for p in report.errors} == {
        LABEL,
        "imagesTr/case_001_0000.nii.gz",
        "imagesTr/case_002_0001.nii.gz",
    }
    with pytest.raises(DatasetIntegrityError) as info:
        report.raise_for_errors()
    assert info.value.exit_code == 1
    assert info.value.message.startswith("3 problems in Task100_Synth: first: ")
    assert "\n" not in info.value.message and "segforge verify" in info.value.hint


def test_float_labels_with_integer_values_are_fine(dataset: Path) -> None:
    _float_label(1.0)(dataset)
    assert sitk.ReadImage(str(_label(dataset))).GetPixelID() == sitk.sitkFloat32
    assert verify_folder(dataset, num_processes=1).ok


def test_tolerance_accepts_rounding_noise(dataset: Path) -> None:
    _edit_image(_label(dataset), origin=(-12.5 + 1e-6, 4.0, 30.25))
    assert verify_folder(dataset, num_processes=1).ok


def test_v2_dataset_with_regions(tmp_path: Path) -> None:
    folder = make_task(tmp_path / "Dataset200_R", n_cases=2, shape=SHAPE, layout="v2")
    _edit_json(folder, lambda d: d["labels"].update(both=[1, 2]))
    report = verify_folder(folder, num_processes=1)
    assert report.ok and report.labels == {"background": 0, "inner": 1, "core": 2}


def test_nonfinite_voxels_counted_from_nifti_and_other_formats(tmp_path: Path) -> None:
    from segforge.io.verify import nifti_nonfinite_count

    data = np.zeros((3, 4, 5), np.float32)
    data[0, 0, 0], data[2, 3, 4] = np.inf, -np.inf
    for name in ("a.nii", "a.nii.gz"):
        sitk.WriteImage(sitk.GetImageFromArray(data), str(tmp_path / name), name.endswith(".gz"))
        assert nifti_nonfinite_count(tmp_path / name) == 2
    sitk.WriteImage(sitk.GetImageFromArray(np.ones((3, 4, 5), np.int16)), str(tmp_path / "i.nii.gz"), True)
    assert nifti_nonfinite_count(tmp_path / "i.nii.gz") == 0
    folder = make_task(tmp_path / "Task101_Mha", n_cases=1, shape=SHAPE)
    image = folder / "imagesTr" / "case_000_0000.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(data), str(image), True)
    report = verify_folder(folder, num_processes=1)
    assert [p.message for p in report.errors if p.file.endswith("case_000_0000.nii.gz")][:1] == ["2 NaN/inf voxel(s)"]
