"""The natural-image IO (PNG, TIFF, JPEG, BMP, GIF through Pillow): channels, dtypes, labels, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segforge.errors import ConfigError
from segforge.io.image_io import image_io_for
from segforge.io.natural_image import NaturalImage2DIO, natural_properties

IO = NaturalImage2DIO()


def _rgb(h: int = 6, w: int = 5) -> np.ndarray:
    return np.arange(h * w * 3, dtype=np.uint8).reshape(h, w, 3)


def _labels(h: int = 6, w: int = 5) -> np.ndarray:
    seg = np.zeros((h, w), np.uint8)
    seg[1:3, 1:4] = 1
    seg[4, :] = 2
    return seg


def test_registered_for_its_endings() -> None:
    for name in ("a_0000.png", "a.tif", "a.tiff", "a.jpg", "a.jpeg", "a.bmp", "a.gif"):
        assert image_io_for(name).name == "natural2d"
    assert image_io_for("a.nii.gz").name == "simpleitk"


@pytest.mark.parametrize("ending", [".png", ".tif", ".bmp"])
def test_rgb_file_gives_three_channels_with_2d_geometry(tmp_path: Path, ending: str) -> None:
    rgb = _rgb()
    Image.fromarray(rgb).save(tmp_path / f"c_0000{ending}")
    data, props = IO.read_images([tmp_path / f"c_0000{ending}"])
    assert data.dtype == np.float32 and data.shape == (3, 1, 6, 5)
    np.testing.assert_array_equal(data[:, 0], np.moveaxis(rgb, -1, 0))
    assert props.spacing == (999.0, 1.0, 1.0) and props.shape == (1, 6, 5) and props.is_2d


def test_gray_files_add_one_channel_each_and_rgb_three(tmp_path: Path) -> None:
    Image.fromarray(_rgb()).save(tmp_path / "c_0000.png")
    Image.fromarray(_labels() * 50).save(tmp_path / "c_0001.png")
    data, _ = IO.read_images([tmp_path / "c_0000.png", tmp_path / "c_0001.png"])
    assert data.shape == (4, 1, 6, 5)
    np.testing.assert_array_equal(data[3, 0], _labels() * 50)


def test_16_bit_png_keeps_its_values(tmp_path: Path) -> None:
    gray = np.array([[0, 300], [65535, 7]], np.uint16)
    Image.fromarray(gray).save(tmp_path / "c_0000.png")
    data, _ = IO.read_images([tmp_path / "c_0000.png"])
    np.testing.assert_array_equal(data[0, 0], gray.astype(np.float32))


def test_jpeg_image_is_read(tmp_path: Path) -> None:
    Image.fromarray(np.full((8, 8, 3), 120, np.uint8)).save(tmp_path / "c_0000.jpg", quality=100)
    data, _ = IO.read_images([tmp_path / "c_0000.jpg"])
    assert data.shape == (3, 1, 8, 8) and np.allclose(data, 120, atol=2)


def test_palette_label_reads_indices_and_palette_image_reads_colours(tmp_path: Path) -> None:
    seg = _labels()
    image = Image.frombytes("P", (5, 6), seg.tobytes())
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0])
    for ending in (".png", ".gif"):
        image.save(tmp_path / f"s{ending}", optimize=False)
        read, props = IO.read_seg(tmp_path / f"s{ending}")
        assert read.shape == (1, 1, 6, 5) and read.dtype == np.uint8 and props.spacing == (999.0, 1.0, 1.0)
        np.testing.assert_array_equal(read[0, 0], seg)
    colours, _ = IO.read_images([tmp_path / "s.png"])
    assert colours.shape == (3, 1, 6, 5)
    assert colours[0, 0][seg == 1].min() == 255 and colours[1, 0][seg == 2].min() == 255


def test_drive_style_gif_mask_reads_its_gray_values(tmp_path: Path) -> None:
    mask = _labels().clip(0, 1) * 255
    Image.fromarray(mask).save(tmp_path / "m.gif")
    read, _ = IO.read_seg(tmp_path / "m.gif")
    assert sorted(np.unique(read).tolist()) == [0, 255]


@pytest.mark.parametrize("ending", [".png", ".tif", ".tiff", ".bmp", ".gif"])
def test_segmentation_round_trip(tmp_path: Path, ending: str) -> None:
    seg = _labels()
    props = natural_properties(6, 5)
    IO.write_seg(seg[None], tmp_path / f"p{ending}", props)
    read, read_props = IO.read_seg(tmp_path / f"p{ending}")
    np.testing.assert_array_equal(read[0, 0], seg)
    assert read_props == props
    assert [p.name for p in tmp_path.iterdir()] == [f"p{ending}"]  # written atomically, no temporary left


def test_segmentation_beyond_255_is_16_bit_png_and_refused_in_gif(tmp_path: Path) -> None:
    seg = _labels().astype(np.int32) * 200
    props = natural_properties(6, 5)
    IO.write_seg(seg, tmp_path / "p.png", props)
    read, _ = IO.read_seg(tmp_path / "p.png")
    np.testing.assert_array_equal(read[0, 0], seg)
    with pytest.raises(ConfigError, match=r"p\.gif: label value 400 does not fit the 8 bits of \.gif"):
        IO.write_seg(seg, tmp_path / "p.gif", props)
    assert not (tmp_path / "p.gif").exists()


def test_jpeg_is_refused_for_segmentations_and_predictions_go_to_png(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"p\.jpg: cannot write a segmentation as JPEG"):
        IO.write_seg(_labels(), tmp_path / "p.jpg", natural_properties(6, 5))
    Image.fromarray(_labels()).save(tmp_path / "s.jpeg")
    with pytest.raises(ConfigError, match=r"s\.jpeg: cannot read a segmentation as JPEG"):
        IO.read_seg(tmp_path / "s.jpeg")
    assert IO.segmentation_ending(".jpg") == ".png" and IO.segmentation_ending(".tif") == ".tif"
    assert not (tmp_path / "p.jpg").exists()


def test_rgba_with_transparency_is_refused_and_opaque_alpha_dropped(tmp_path: Path) -> None:
    rgba = np.dstack([_rgb(), np.full((6, 5), 255, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "opaque_0000.png")
    data, _ = IO.read_images([tmp_path / "opaque_0000.png"])
    assert data.shape == (3, 1, 6, 5)
    rgba[0, 0, 3] = 10
    Image.fromarray(rgba).save(tmp_path / "alpha_0000.png")
    with pytest.raises(ConfigError, match=r"alpha_0000\.png: RGBA image with 1 \(partly\) transparent pixel"):
        IO.read_images([tmp_path / "alpha_0000.png"])


def test_colour_label_is_refused_and_gray_rgb_label_accepted(tmp_path: Path) -> None:
    Image.fromarray(np.repeat(_labels()[..., None], 3, axis=-1)).save(tmp_path / "gray.png")
    np.testing.assert_array_equal(IO.read_seg(tmp_path / "gray.png")[0][0, 0], _labels())
    Image.fromarray(_rgb()).save(tmp_path / "colour.png")
    with pytest.raises(ConfigError, match=r"colour\.png: label map in colour"):
        IO.read_seg(tmp_path / "colour.png")


def test_unreadable_multiframe_and_mismatched_files_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "bad_0000.png").write_bytes(b"not an image")
    with pytest.raises(ConfigError, match=r"cannot read .*bad_0000\.png: not an image"):
        IO.read_images([tmp_path / "bad_0000.png"])
    with pytest.raises(ConfigError, match=r"cannot read .*none\.png: file not found"):
        IO.read_seg(tmp_path / "none.png")
    frames = [Image.fromarray(_labels() * k) for k in (1, 2)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    with pytest.raises(ConfigError, match=r"anim\.gif: holds 2 frames"):
        IO.read_seg(tmp_path / "anim.gif")
    Image.fromarray(_rgb()).save(tmp_path / "a_0000.png")
    Image.fromarray(_rgb(7, 5)).save(tmp_path / "a_0001.png")
    with pytest.raises(ConfigError, match=r"a_0001\.png and .*a_0000\.png differ in shape \(7x5 vs 6x5"):
        IO.read_images([tmp_path / "a_0000.png", tmp_path / "a_0001.png"])


def test_write_image_float_only_as_tiff(tmp_path: Path) -> None:
    props = natural_properties(6, 5)
    values = np.linspace(0, 1, 30, dtype=np.float32).reshape(6, 5)
    IO.write_image(values, tmp_path / "f.tif", props)
    np.testing.assert_array_equal(IO.read_images([tmp_path / "f.tif"])[0][0, 0], values)
    with pytest.raises(ConfigError, match=r"f\.png: \.png holds integer pixels"):
        IO.write_image(values, tmp_path / "f.png", props)
    IO.write_image(values * 1000, tmp_path / "i.png", props, dtype=np.uint16)
    np.testing.assert_array_equal(IO.read_images([tmp_path / "i.png"])[0][0, 0], (values * 1000).astype(np.uint16))


def test_write_checks_the_shape_against_the_geometry(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"array shape \(5, 6\) does not match the image geometry \(1, 6, 5\)"):
        IO.write_seg(np.zeros((5, 6), np.uint8), tmp_path / "p.png", natural_properties(6, 5))


def test_header_geometry_ignores_dpi_as_the_reader_does(tmp_path: Path) -> None:
    from segforge.io.header_geometry import header_geometry_for
    from segforge.resources import header_geometry

    Image.fromarray(np.zeros((50, 40), np.uint8)).save(tmp_path / "c_0000.tif", dpi=(1, 1))
    assert header_geometry(tmp_path / "c_0000.tif") == ((50, 40), (25.4, 25.4))  # SimpleITK: 1 inch per pixel
    assert header_geometry_for(tmp_path / "c_0000.tif") == ((1, 50, 40), (999.0, 1.0, 1.0))
    assert header_geometry_for(tmp_path / "missing.png") is None


def test_rgb_is_written_from_channels_first_integers_only(tmp_path: Path) -> None:
    io = NaturalImage2DIO()
    pixels = np.random.default_rng(3).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "in.png")
    data, props = io.read_images([tmp_path / "in.png"])  # [3, 1, y, x] float32
    io.write_image(data.astype(np.uint8), tmp_path / "out.png", props, dtype=None)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out.png")), pixels)
    with pytest.raises(ConfigError, match="RGB pixels are float32"):
        io.write_image(data, tmp_path / "float.png", props, dtype=None)
    assert not (tmp_path / "float.png").exists()
