"""``segforge predict`` over series sub-folders (core command, plugin IO) and ``segforge dicom predict``."""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pydicom
import SimpleITK as sitk
from test_reading import corners

from conftest import MODEL_LABELS, SEG_ON_SERIES


def _inputs(tmp_path, series, *names):
    import shutil

    folder = tmp_path / "in"
    for name in names:
        shutil.copytree(series, folder / name)
    return folder


def test_predict_writes_each_subfolder_as_nifti_on_the_series_grid(ct_series, tiny_model, tmp_path, run_cli):
    inputs = _inputs(tmp_path, ct_series, "patient_a", "patient_b")
    code, out, err = run_cli("predict", "-i", inputs, "-o", tmp_path / "out", "-m", tiny_model, "--no-tta",
                             "--sequential", "--device", "cpu")  # fmt: skip
    assert code == 0, err
    assert "2 case(s) to predict" in err and "patient_b.nii.gz" in out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["patient_a.nii.gz", "patient_b.nii.gz"]
    pred, reference = sitk.ReadImage(str(tmp_path / "out" / "patient_a.nii.gz")), sitk.ReadImage(str(SEG_ON_SERIES))
    assert pred.GetSize() == reference.GetSize() == (512, 512, 20)
    assert np.allclose(pred.GetSpacing(), reference.GetSpacing())
    assert corners(pred) == corners(reference)  # same voxel centres as TotalSegmentator's label volume
    labels = np.unique(sitk.GetArrayFromImage(pred))
    assert set(labels.tolist()) <= set(MODEL_LABELS.values()) and len(labels) > 1
    a, b = (sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out" / f"patient_{c}.nii.gz"))) for c in "ab")
    np.testing.assert_array_equal(a, b)  # the same series gives the same prediction


def test_dicom_predict_writes_a_dicom_seg_beside_each_nifti(complete_series, tiny_model, tmp_path, run_cli):
    inputs = _inputs(tmp_path, complete_series, "case1")
    code, _, err = run_cli("dicom", "predict", "-i", inputs, "-o", tmp_path / "out", "-m", tiny_model, "--no-tta",
                           "--device", "cpu")  # fmt: skip
    assert code == 0, err
    assert "1 DICOM-SEG file(s)" in err
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out" / "case1.nii.gz")))
    frames = sum(int((labels == v).any(axis=(1, 2)).sum()) for v in (1, 2)) or 2 * labels.shape[0]
    seg = hd.seg.segread(tmp_path / "out" / "case1.dcm")
    assert seg.number_of_segments == 2 and int(seg.NumberOfFrames) == frames
    assert [seg.get_segment_description(k).segment_label for k in (1, 2)] == ["body", "dense"]
    ds = pydicom.dcmread(tmp_path / "out" / "case1.dcm")
    assert ds.Modality == "SEG" and len(ds.SegmentSequence) == 2 and int(ds.NumberOfFrames) == frames
    source = pydicom.dcmread(next(complete_series.iterdir()), stop_before_pixels=True)
    assert ds.StudyInstanceUID == source.StudyInstanceUID
    np.testing.assert_array_equal(segment_masks(seg, complete_series, [1, 2]), [labels == 1, labels == 2])
    # the same from predict's output folder afterwards: to-seg over folders, labels from the model
    code, _, err = run_cli("dicom", "to-seg", tmp_path / "out", inputs, tmp_path / "again", "-m", tiny_model)
    assert code == 0, err
    again = hd.seg.segread(tmp_path / "again" / "case1.dcm")
    np.testing.assert_array_equal(segment_masks(again, complete_series, [1, 2]), [labels == 1, labels == 2])


def segment_masks(seg, series, numbers):
    """The SEG's segments ``numbers`` as boolean volumes in the series' slice order (z ascending), from highdicom."""
    from segforge_dicom.series import series_grid

    _, grid = series_grid(series)
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in grid.files]
    uids = [h.SOPInstanceUID or h.file_meta.MediaStorageSOPInstanceUID for h in headers]  # blanked by de-identification
    pixels = seg.get_pixels_by_source_instance(uids, segment_numbers=list(numbers))
    return np.moveaxis(pixels, -1, 0).astype(bool)


def test_python_api_predicts_series_folders_too(ct_series, tiny_model, tmp_path):
    from segforge.api import Predictor

    inputs = _inputs(tmp_path, ct_series, "patient_a")
    written = Predictor(tiny_model, device="cpu", tta=False).predict_folder(inputs, tmp_path / "out", overlap=False)
    assert written == [tmp_path / "out" / "patient_a.nii.gz"]
    assert corners(sitk.ReadImage(str(written[0]))) == corners(sitk.ReadImage(str(SEG_ON_SERIES)))
