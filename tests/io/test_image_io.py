"""SimpleITKIO: geometry round trips (3D and 2D), labels, multi-channel files and one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from segforge.errors import ConfigError
from segforge.io.image_io import ImageProperties, SimpleITKIO, image_io_for
from segforge.plugins import SegforgeManager

ROTATION = (0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)  # 90 degrees about z


def _write(path: Path, array: np.ndarray, spacing=(0.7, 0.8, 2.5), origin=(10.0, -3.5, 7.25), direction=None) -> Path:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing[: array.ndim])
    image.SetOrigin(origin[: array.ndim])
    if direction is not None:
        image.SetDirection(direction)
    sitk.WriteImage(image, str(path), True)
    return path


@pytest.fixture
def io() -> SimpleITKIO:
    return SimpleITKIO()


def test_3d_round_trip_keeps_geometry_and_values(io: SimpleITKIO, tmp_path: Path) -> None:
    data = np.random.default_rng(0).normal(size=(5, 6, 7)).astype(np.float32)
    src = _write(tmp_path / "a_0000.nii.gz", data, direction=ROTATION)
    array, props = io.read_images([src])
    assert array.shape == (1, 5, 6, 7) and array.dtype == np.float32
    assert props.spacing == pytest.approx((2.5, 0.8, 0.7))  # array order
    assert props.itk_spacing == pytest.approx((0.7, 0.8, 2.5))
    assert props.origin == pytest.approx((10.0, -3.5, 7.25))
    assert props.direction == pytest.approx(ROTATION)
    assert props.shape == (5, 6, 7)
    io.write_image(array[0], tmp_path / "out.nii.gz", props)
    back = sitk.ReadImage(str(tmp_path / "out.nii.gz"))
    assert back.GetSpacing() == pytest.approx((0.7, 0.8, 2.5))
    assert back.GetOrigin() == pytest.approx((10.0, -3.5, 7.25))
    assert back.GetDirection() == pytest.approx(ROTATION)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), data)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporaries left


def test_2d_gets_fake_axis_and_writing_undoes_it(io: SimpleITKIO, tmp_path: Path) -> None:
    seg = np.zeros((8, 9), dtype=np.uint8)
    seg[2:5, 3:7] = 2
    src = _write(tmp_path / "s.nii.gz", seg, spacing=(0.5, 0.25), origin=(1.0, 2.0))
    array, props = io.read_seg(src)
    assert array.shape == (1, 1, 8, 9)
    assert props.spacing == (999.0, 0.25, 0.5) and props.is_2d
    assert props.shape == (1, 8, 9)
    assert ImageProperties.model_validate_json(props.model_dump_json()) == props  # JSON-able
    io.write_seg(array[0], tmp_path / "back.nii.gz", props)
    back = sitk.ReadImage(str(tmp_path / "back.nii.gz"))
    assert back.GetDimension() == 2
    assert back.GetSpacing() == (0.5, 0.25) and back.GetOrigin() == (1.0, 2.0)
    assert back.GetPixelID() == sitk.sitkUInt8
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), seg)


def test_read_seg_accepts_float_labels_holding_integers(io: SimpleITKIO, tmp_path: Path) -> None:
    seg = np.zeros((3, 4, 5), dtype=np.float32)
    seg[1, 1:3, 2] = 2.0
    array, _ = io.read_seg(_write(tmp_path / "f.nii.gz", seg))
    assert array.dtype == np.uint8 and array.shape == (1, 3, 4, 5)
    assert sorted(np.unique(array).tolist()) == [0, 2]
    neg = _write(tmp_path / "n.nii.gz", np.full((2, 2, 2), -3, dtype=np.int32))
    assert io.read_seg(neg)[0].dtype == np.int16


def test_read_seg_refuses_non_integer_floats(io: SimpleITKIO, tmp_path: Path) -> None:
    seg = np.zeros((3, 4, 5), dtype=np.float32)
    seg[0, 0, 0] = 0.5
    path = _write(tmp_path / "bad.nii.gz", seg)
    with pytest.raises(ConfigError, match="non-integer value 0.5") as info:
        io.read_seg(path)
    assert str(path) in info.value.message and info.value.hint


def test_real_float_label_reads_as_uint8(io: SimpleITKIO, hippocampus_msd: Path) -> None:
    path = hippocampus_msd / "labelsTr" / "hippocampus_003.nii.gz"
    assert sitk.ReadImage(str(path)).GetPixelID() == sitk.sitkFloat32
    array, props = io.read_seg(path)
    assert array.dtype == np.uint8 and sorted(np.unique(array).tolist()) == [0, 1, 2]
    assert props.spacing == (1.0, 1.0, 1.0) and array.shape[1:] == props.shape


def test_channels_with_different_geometry_name_both_files(io: SimpleITKIO, tmp_path: Path) -> None:
    a = _write(tmp_path / "c_0000.nii.gz", np.zeros((3, 4, 5), np.float32))
    b = _write(tmp_path / "c_0001.nii.gz", np.zeros((3, 4, 5), np.float32), spacing=(1.0, 1.0, 1.0))
    with pytest.raises(ConfigError, match="differ in spacing") as info:
        io.read_images([a, b])
    assert str(a) in info.value.message and str(b) in info.value.message


def test_corrupt_file_gives_one_line_error(io: SimpleITKIO, tmp_path: Path) -> None:
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(ConfigError) as info:
        io.read_images([bad])
    assert info.value.message.startswith(f"cannot read {bad}: ")
    assert "\n" not in info.value.message and "sitk" not in info.value.message and info.value.hint
    with pytest.raises(ConfigError, match="file not found"):
        io.read_seg(tmp_path / "missing.nii.gz")


def test_read_4d_splits_channels_with_3d_geometry(io: SimpleITKIO, tmp_path: Path) -> None:
    data = np.arange(2 * 3 * 4 * 5, dtype=np.int16).reshape(2, 3, 4, 5)
    image = sitk.GetImageFromArray(data, isVector=False)
    image.SetSpacing((0.5, 0.6, 3.0, 1.0))
    image.SetOrigin((1.0, 2.0, 3.0, 0.0))
    path = tmp_path / "multi.nii.gz"
    sitk.WriteImage(image, str(path), True)
    array, props = io.read_4d(path)
    assert array.shape == (2, 3, 4, 5) and array.dtype == np.int16
    np.testing.assert_array_equal(array[1], data[1])
    assert props.itk_spacing == pytest.approx((0.5, 0.6, 3.0)) and props.origin == (1.0, 2.0, 3.0)
    assert props.direction == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0) and props.shape == (3, 4, 5)
    with pytest.raises(ConfigError, match="expected a 2D or 3D single-channel image"):
        io.read_images([path])


def test_write_seg_checks_shape(io: SimpleITKIO, tmp_path: Path) -> None:
    _, props = io.read_seg(_write(tmp_path / "s.nii.gz", np.zeros((3, 4, 5), np.uint8)))
    with pytest.raises(ConfigError, match="does not match the image geometry"):
        io.write_seg(np.zeros((3, 4, 6), np.uint8), tmp_path / "o.nii.gz", props)
    assert not (tmp_path / "o.nii.gz").exists()


def test_image_io_for_uses_the_registry() -> None:
    manager = SegforgeManager(builtins=[("builtin.image_io", "segforge.builtins.image_io")], autoload=False)
    registries = manager.require_ok()
    entry = registries.image_io.entry("simpleitk")
    assert entry.origin.plugin == "builtin.image_io" and entry.origin.builtin
    assert image_io_for("case_0000.nii.gz", registries).name == "simpleitk"
    assert image_io_for(".mha", registries).name == "simpleitk"
    assert image_io_for("case_0000.png", registries).name == "natural2d"
    with pytest.raises(ConfigError, match=r"no image reader for 'x\.webp' \(supported endings: .*\.nii\.gz"):
        image_io_for("x.webp", registries)
