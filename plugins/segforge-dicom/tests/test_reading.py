"""Reading the real CT series: the same array and grid as its NIfTI conversion, SimpleITK/GDCM and pydicom."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from segforge_dicom.image_io import DicomParams, DicomSeriesIO
from segforge_dicom.series import scan_folder, series_grid

from conftest import SEG_ON_SERIES, copy_series
from segforge.io.image_io import SimpleITKIO


def corners(image: sitk.Image) -> set[tuple[float, ...]]:
    """Physical positions (mm, rounded to 1 µm) of the 8 corner voxel centres: equal sets = one grid, any axis flips."""
    size = image.GetSize()
    return {
        tuple(round(c, 3) for c in image.TransformIndexToPhysicalPoint(index))
        for index in itertools.product(*[(0, s - 1) for s in size])
    }


def test_series_and_its_nifti_conversion_give_the_same_array_and_geometry(ct_series, tmp_path, run_cli):
    data, props = DicomSeriesIO().read_images([ct_series])
    code, _, err = run_cli("dicom", "to-nifti", ct_series, tmp_path / "ct_0000.nii.gz")
    assert code == 0, err
    nifti, nifti_props = SimpleITKIO().read_images([tmp_path / "ct_0000.nii.gz"])
    np.testing.assert_array_equal(data, nifti)
    assert props.geometry_differences(nifti_props) == []
    assert data.shape == (1, 20, 512, 512) and data.dtype == np.float32
    assert props.spacing == (2.0, 0.9765625, 0.9765625)
    assert props.origin == (-249.51171875, -437.51171875, -804.5)  # the lowest slice (z = -804.5) comes first


def test_reader_matches_simpleitk_gdcm_sort_and_pydicom_pixels(ct_series):
    import pydicom
    from pydicom.pixels import apply_modality_lut

    data, props = DicomSeriesIO().read_images([ct_series])
    ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(ct_series))
    reference = sitk.ReadImage(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(ct_series), ids[0]))
    np.testing.assert_array_equal(data[0], sitk.GetArrayFromImage(reference))
    assert props.itk_spacing == reference.GetSpacing() and props.origin == reference.GetOrigin()
    assert props.direction == reference.GetDirection()
    _, grid = series_grid(ct_series)
    for k in (0, 7, 19):  # decoded independently of GDCM: pydicom + Pillow's JPEG 2000, modality LUT to HU
        ds = pydicom.dcmread(grid.files[k])
        np.testing.assert_array_equal(data[0, k], apply_modality_lut(ds.pixel_array, ds).astype(np.float32))
        assert float(ds.ImagePositionPatient[2]) == pytest.approx(-804.5 + 2.0 * k)


def test_slice_order_comes_from_positions_not_file_names(ct_series, tmp_path):
    expected, _ = DicomSeriesIO().read_images([ct_series])
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    files = sorted(ct_series.iterdir())
    for i, path in enumerate(files):  # reversed, meaningless names
        (shuffled / f"IM{len(files) - i:04d}").write_bytes(path.read_bytes())
    data, _ = DicomSeriesIO().read_images([shuffled])
    np.testing.assert_array_equal(data, expected)


def test_the_series_grid_is_the_grid_of_example_seg_dicom(ct_series):
    """The label volume TotalSegmentator ships for this series lies on the grid the reader returns."""
    from segforge_dicom.image_io import read_series_image

    image, seg = read_series_image(ct_series), sitk.ReadImage(str(SEG_ON_SERIES))
    assert corners(image) == corners(seg)  # the same voxel centres (the NIfTI stores y flipped)
    same = sitk.DICOMOrient(seg, "LPS")
    assert same.GetOrigin() == pytest.approx(image.GetOrigin()) and same.GetDirection() == image.GetDirection()
    liver = sitk.GetArrayFromImage(same) == 5  # liver is soft tissue: its HU median lies in 0..120
    assert 0 < np.median(sitk.GetArrayFromImage(image)[liver]) < 120


def test_claims_only_folders_holding_dicom_images(ct_series, tmp_path):
    io = DicomSeriesIO()
    assert io.claims_directory(ct_series) is True
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("not an image")
    assert io.claims_directory(tmp_path / "notes") is False
    assert io.claims_directory(SEG_ON_SERIES) is False  # a file is not a series folder


def test_series_is_named_by_uid_and_description(ct_series, tmp_path):
    folder = copy_series(ct_series, tmp_path / "ct", series="1.2.826.0.1.3680043.8.498.1")
    [series] = scan_folder(folder)
    assert series.name == "1.2.826.0.1.3680043.8.498.1 'CT Body 3.0' (20 CT slices)"
    assert series.matches("CT Body 3.0") and series.matches("1.2.826.0.1.3680043.8.498.1")
    data, _ = DicomSeriesIO(DicomParams(series="CT Body 3.0")).read_images([folder])
    assert data.shape == (1, 20, 512, 512)


def test_write_seg_is_nifti_on_the_series_grid(ct_series, tmp_path: Path):
    io = DicomSeriesIO()
    data, props = io.read_images([ct_series])
    seg = (data[0] > 200).astype(np.uint8)  # bone
    io.write_seg(seg, tmp_path / "case.nii.gz", props)
    back, back_props = SimpleITKIO().read_seg(tmp_path / "case.nii.gz")
    np.testing.assert_array_equal(back[0], seg)
    assert back_props.geometry_differences(props) == []


def test_objects_without_a_grid_beside_the_slices_are_ignored(ct_series, tmp_path):
    """A DICOMDIR-like object, a text file and a DICOM-SEG in the series folder do not make a second series."""
    import pydicom

    folder = copy_series(ct_series, tmp_path / "ct")
    (folder / "README.txt").write_text("exported by the PACS")
    report = pydicom.dcmread(sorted(folder.iterdir())[0], stop_before_pixels=True)
    del report.ImagePositionPatient, report.PixelSpacing  # a header-only object with no place in space
    report.SeriesInstanceUID = "1.2.3.4"
    report.save_as(folder / "report.dcm")
    [series] = scan_folder(folder)
    assert len(series.slices) == 20


def test_oblique_sagittal_stack_gets_gdcm_geometry(ct_series, tmp_path):
    """The same slices relabelled as a sagittal stack tilted 30 degrees: direction, origin and spacing equal GDCM's."""
    import pydicom
    from segforge_dicom.image_io import read_series_image

    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    row, col = np.array([0.0, c, s]), np.array([0.0, -s, c])  # in-plane axes; the normal row x col is +x
    folder = tmp_path / "sagittal"
    folder.mkdir()
    for path in sorted(ct_series.iterdir()):
        ds = pydicom.dcmread(path)
        k = (float(ds.ImagePositionPatient[2]) + 804.5) / 2.0  # 0 .. 19 along the original z
        ds.ImageOrientationPatient = [float(v) for v in (*row, *col)]
        ds.ImagePositionPatient = [10.0 - 2.5 * k, -20.0, 30.0]
        ds.save_as(folder / path.name)
    ours = read_series_image(folder)
    ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    gdcm = sitk.ReadImage(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), ids[0]))
    assert np.allclose(ours.GetDirection(), gdcm.GetDirection()) and np.allclose(ours.GetOrigin(), gdcm.GetOrigin())
    assert np.allclose(ours.GetSpacing(), (0.9765625, 0.9765625, 2.5))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(ours), sitk.GetArrayFromImage(gdcm))
    assert np.allclose(np.reshape(ours.GetDirection(), (3, 3))[:, 2], [1.0, 0.0, 0.0])
    assert ours.GetOrigin() == pytest.approx((10.0 - 2.5 * 19, -20.0, 30.0))  # the last file comes first
