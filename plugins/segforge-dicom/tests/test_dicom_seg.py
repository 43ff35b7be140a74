"""``segforge dicom to-seg``: real labels on the real series as DICOM-SEG, read back by highdicom and pydicom."""

from __future__ import annotations

import json

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from test_predict import segment_masks

from conftest import SEG_ON_SERIES


@pytest.fixture(scope="module")
def labels_on_series(complete_series, tmp_path_factory):
    """example_seg_dicom.nii.gz laid on the series' grid (a pure axis flip) and a dataset.json naming its labels."""
    from segforge_dicom.image_io import read_series_image

    folder = tmp_path_factory.mktemp("labels")
    grid = read_series_image(complete_series)
    seg = sitk.ReadImage(str(SEG_ON_SERIES))
    on_grid = sitk.Resample(seg, grid, sitk.Transform(), sitk.sitkNearestNeighbor, 0, seg.GetPixelID())
    array = sitk.GetArrayFromImage(on_grid)
    np.testing.assert_array_equal(array, sitk.GetArrayFromImage(seg)[:, ::-1, :])  # nothing interpolated
    sitk.WriteImage(on_grid, str(folder / "ct.nii.gz"), True)
    values = [int(v) for v in np.unique(array) if v]
    names = {1: "spleen", 2: "kidney_right", 3: "kidney_left", 5: "liver"}
    labels = {"background": 0, **{names.get(v, f"class_{v}"): v for v in values}}
    (folder / "dataset.json").write_text(json.dumps({"labels": labels}))
    return folder, array, values


def test_to_seg_writes_every_label_as_a_segment_with_the_right_frames(labels_on_series, complete_series, run_cli):
    folder, array, values = labels_on_series
    code, _, err = run_cli("dicom", "to-seg", folder / "ct.nii.gz", complete_series, folder / "ct.dcm",
                           "--labels", folder / "dataset.json")  # fmt: skip
    assert code == 0, err
    frames = sum(int((array == v).any(axis=(1, 2)).sum()) for v in values)
    assert len(values) == 31 and frames == 520  # measured on this file: 31 organs over 520 slice-segment frames
    seg = hd.seg.segread(folder / "ct.dcm")
    assert seg.number_of_segments == len(values) and int(seg.NumberOfFrames) == frames
    assert seg.get_segment_description(1).segment_label == "spleen"
    assert values[:3] == [1, 5, 6]  # no kidneys in these 20 slices: segment 2 is label value 5
    assert seg.get_segment_description(2).segment_label == "liver"
    checked = [1, 2, len(values)]  # spleen, liver and the last organ: pixels per source slice equal the NIfTI's
    masks = segment_masks(seg, complete_series, checked)
    np.testing.assert_array_equal(masks, [array == values[k - 1] for k in checked])
    ds = pydicom.dcmread(folder / "ct.dcm")
    assert (ds.Modality, len(ds.SegmentSequence), int(ds.NumberOfFrames)) == ("SEG", len(values), frames)
    referenced = {
        f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        for f in ds.PerFrameFunctionalGroupsSequence
    }
    sources = {pydicom.dcmread(p, stop_before_pixels=True).file_meta.MediaStorageSOPInstanceUID
               for p in complete_series.iterdir()}  # fmt: skip
    assert referenced <= sources and len(referenced) == 20  # every slice holds some organ


def test_blank_study_uid_is_refused_with_one_line(ct_series, labels_on_series, tmp_path, run_cli):
    folder, _, _ = labels_on_series
    code, out, err = run_cli("dicom", "to-seg", folder / "ct.nii.gz", ct_series, tmp_path / "x.dcm",
                             "--labels", folder / "dataset.json")  # fmt: skip
    assert code != 0 and "Traceback" not in err
    [line] = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert "has no StudyInstanceUID, which a DICOM-SEG must reference" in line
    assert not (tmp_path / "x.dcm").exists()


def test_prediction_off_the_series_grid_is_refused(complete_series, labels_on_series, tmp_path, run_cli):
    folder, _, _ = labels_on_series
    image = sitk.ReadImage(str(folder / "ct.nii.gz"))
    image.SetOrigin((0.0, 0.0, 0.0))
    sitk.WriteImage(image, str(tmp_path / "moved.nii.gz"))
    code, _, err = run_cli("dicom", "to-seg", tmp_path / "moved.nii.gz", complete_series, tmp_path / "x.dcm",
                           "--labels", folder / "dataset.json")  # fmt: skip
    assert code != 0
    assert "is not on the grid of series" in err and "origin (0, 0, 0)" in err
    assert not (tmp_path / "x.dcm").exists()


def test_labels_need_a_model_or_a_dataset_json_without_regions(complete_series, labels_on_series, tmp_path, run_cli):
    folder, _, _ = labels_on_series
    code, _, err = run_cli("dicom", "to-seg", folder / "ct.nii.gz", complete_series, tmp_path / "x.dcm")
    assert code != 0 and "pass the model (-m MODEL_DIR) or its dataset.json (--labels FILE)" in err
    (tmp_path / "regions.json").write_text(json.dumps({"labels": {"background": 0, "whole": [1, 2]}}))
    code, _, err = run_cli("dicom", "to-seg", folder / "ct.nii.gz", complete_series, tmp_path / "x.dcm",
                           "--labels", tmp_path / "regions.json")  # fmt: skip
    assert code != 0 and "labels hold regions (lists)" in err
    (tmp_path / "few.json").write_text(json.dumps({"labels": {"background": 0, "liver": 5}}))
    code, _, err = run_cli("dicom", "to-seg", folder / "ct.nii.gz", complete_series, tmp_path / "x.dcm",
                           "--labels", tmp_path / "few.json")  # fmt: skip
    assert code != 0 and "holds label value(s) [1, 6, 7," in err
    assert not (tmp_path / "x.dcm").exists()
