"""Bad series folders given to ``segforge predict``: one error line naming the folder and series, nothing written.

Made from copies of the real slices: a second series (a copy with another SeriesInstanceUID
and description), a missing middle slice, a duplicated slice; and the plugin blocked
(``-p no:dicom``), which must name the package to install.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from conftest import copy_series, write_tiny_model

PREDICT = ("--no-tta", "--sequential", "--device", "cpu")
OTHER_UID = "1.2.826.0.1.3680043.8.498.77"


def two_series(ct_series: Path, folder: Path) -> Path:
    """The real series plus a renamed copy of it with another UID and description: two series in one folder."""
    copy_series(ct_series, folder)
    for path in sorted(ct_series.iterdir()):
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID, ds.SeriesDescription = OTHER_UID, "CT copy"
        ds.save_as(folder / f"copy_{path.name}")
    return folder


def missing_slice(ct_series: Path, folder: Path) -> Path:
    copy_series(ct_series, folder)
    files = sorted(folder.iterdir(), key=lambda p: float(pydicom.dcmread(p, stop_before_pixels=True)
                                                         .ImagePositionPatient[2]))  # fmt: skip
    files[10].unlink()  # a middle slice
    return folder


def error_line(code: int, err: str) -> str:
    assert code != 0 and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert "\nhint: " in "\n" + err
    return errors[0]


@pytest.fixture
def inputs(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    return folder


def test_two_series_in_one_case_folder_are_named_and_refused(ct_series, tiny_model, inputs, tmp_path, run_cli):
    shutil.copytree(ct_series, inputs / "good")
    two_series(ct_series, inputs / "mixed")
    code, _, err = run_cli("predict", "-i", inputs, "-o", tmp_path / "out", "-m", tiny_model, *PREDICT)
    line = error_line(code, err)
    assert f"{inputs / 'mixed'} holds 2 DICOM series" in line
    assert "(no SeriesInstanceUID) 'CT Body 3.0' (20 CT slices)" in line and f"{OTHER_UID} 'CT copy'" in line
    assert not (tmp_path / "out").exists()  # checked before any case is predicted: the good case is not written


def test_series_option_selects_one_series(ct_series, tiny_model, inputs, tmp_path, run_cli):
    two_series(ct_series, inputs / "mixed")
    code, _, err = run_cli("dicom", "predict", "-i", inputs, "-o", tmp_path / "out", "-m", tiny_model,
                           "--series", "CT copy", "--nifti-only", "--no-tta", "--device", "cpu")  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["mixed.nii.gz"]
    code, _, err = run_cli("dicom", "predict", "-i", inputs, "-o", tmp_path / "out2", "-m", tiny_model,
                           "--series", "CT", "--nifti-only")  # fmt: skip
    assert "no series with SeriesInstanceUID or SeriesDescription 'CT'" in error_line(code, err)
    assert not (tmp_path / "out2").exists()


def test_missing_slice_is_refused(ct_series, tiny_model, inputs, tmp_path, run_cli):
    missing_slice(ct_series, inputs / "gap")
    code, _, err = run_cli("predict", "-i", inputs, "-o", tmp_path / "out", "-m", tiny_model, *PREDICT)
    line = error_line(code, err)
    assert "slice spacing is not uniform (4 mm between" in line and "2 mm elsewhere): a slice is missing" in line
    assert str(inputs / "gap") in line
    assert not (tmp_path / "out").exists()


def test_duplicate_slice_is_refused(ct_series, inputs, tmp_path, run_cli):
    folder = copy_series(ct_series, inputs / "dup")
    first = sorted(folder.iterdir())[0]
    shutil.copy(first, folder / "again")
    code, _, err = run_cli("dicom", "to-nifti", folder, tmp_path / "x.nii.gz")
    assert "share one slice position" in error_line(code, err)
    assert not (tmp_path / "x.nii.gz").exists()


def test_without_the_plugin_predict_names_the_package(ct_series, tiny_model, inputs, tmp_path, run_cli):
    shutil.copytree(ct_series, inputs / "patient")
    code, _, err = run_cli("-p", "no:dicom", "predict", "-i", inputs, "-o", tmp_path / "out", "-m", tiny_model,
                           *PREDICT)  # fmt: skip
    line = error_line(code, err)
    assert "is a DICOM series folder, but no installed image IO reads DICOM" in line
    assert "pip install segforge-dicom" in err
    assert not (tmp_path / "out").exists()


def test_a_single_series_as_the_input_folder_says_to_use_subfolders(ct_series, tiny_model, tmp_path, run_cli):
    code, _, err = run_cli("predict", "-i", ct_series, "-o", tmp_path / "out", "-m", tiny_model, *PREDICT)
    assert "is itself one series, not a folder of cases" in error_line(code, err)


def test_a_non_series_folder_beside_series_is_refused(ct_series, tiny_model, inputs, tmp_path, run_cli):
    shutil.copytree(ct_series, inputs / "patient")
    (inputs / "notes").mkdir()
    (inputs / "notes" / "a.txt").write_text("x")
    code, _, err = run_cli("predict", "-i", inputs, "-o", tmp_path / "out", "-m", tiny_model, *PREDICT)
    assert f"{inputs / 'notes'} is not a series folder, but patient next to it is" in error_line(code, err)


def test_a_cascade_model_refuses_series_folders_before_its_first_stage(ct_series, inputs, tmp_path, run_cli):
    shutil.copytree(ct_series, inputs / "patient")
    model = write_tiny_model(tmp_path / "results", "3d_cascade_fullres")
    code, _, err = run_cli("predict", "-i", inputs, "-o", tmp_path / "out", "-m", model, *PREDICT)
    assert "a cascade model cannot read series sub-folders as cases yet" in error_line(code, err)
    assert not (tmp_path / "out").exists()


def _edit_one_slice(ct_series: Path, folder: Path, change) -> Path:
    copy_series(ct_series, folder)
    path = sorted(folder.iterdir())[5]
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path)
    return folder


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda ds: setattr(ds, "ImageOrientationPatient", [0, 1, 0, 0, 0, -1]), "has another ImageOrientationPatient"),
        (lambda ds: setattr(ds, "PixelSpacing", [0.5, 0.5]), "has another PixelSpacing"),
        (lambda ds: ds.ImagePositionPatient.__setitem__(0, ds.ImagePositionPatient[0] + 5), "(gantry tilt?)"),
    ],
    ids=["orientation", "pixel-spacing", "tilt"],
)
def test_slices_that_do_not_form_one_grid_are_refused(ct_series, tmp_path, run_cli, change, message):
    folder = _edit_one_slice(ct_series, tmp_path / "ct", change)
    code, _, err = run_cli("dicom", "to-nifti", folder, tmp_path / "x.nii.gz")
    assert message in error_line(code, err)
    assert not (tmp_path / "x.nii.gz").exists()


def test_an_image_series_is_not_a_segmentation(ct_series, tmp_path):
    from segforge_dicom.image_io import DicomSeriesIO

    from segforge.errors import ConfigError

    io = DicomSeriesIO()
    with pytest.raises(ConfigError, match="a DICOM image series cannot be read as a segmentation"):
        io.read_seg(ct_series)
    _, props = io.read_images([ct_series])
    with pytest.raises(ConfigError, match="a segmentation of a DICOM series is written as NIfTI"):
        io.write_seg(np.zeros((20, 512, 512), np.uint8), tmp_path / "seg.png", props)


def test_series_command_on_a_folder_without_dicom(tmp_path, run_cli):
    (tmp_path / "a.txt").write_text("x")
    code, _, err = run_cli("dicom", "series", tmp_path)
    assert "no DICOM image series found" in error_line(code, err)


def test_a_slice_with_cut_off_pixel_data_is_named(ct_series, tmp_path, run_cli):
    folder = copy_series(ct_series, tmp_path / "ct")
    damaged = sorted(folder.iterdir())[4]
    data = damaged.read_bytes()
    damaged.write_bytes(data[: len(data) // 2])  # the header survives, half the JPEG 2000 stream is gone
    code, _, err = run_cli("dicom", "to-nifti", folder, tmp_path / "x.nii.gz")
    assert f"{damaged}: cannot read the pixels of this slice of series" in error_line(code, err)
    assert not (tmp_path / "x.nii.gz").exists()
