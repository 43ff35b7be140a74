"""Reading and writing 2D natural images (PNG, TIFF, JPEG, BMP, GIF) with Pillow.

Photographs, microscopy and fundus images come as 8/16-bit PNG, TIFF or JPEG files, often in
colour, and their masks as PNG or GIF. nnU-Net v2 reads them with its ``NaturalImage2DIO``;
this component follows the same conventions so an nnU-Net raw dataset with
``"file_ending": ".png"`` works unchanged:

- an image is 2D: arrays are ``(1, y, x)`` with spacing ``(999, 1, 1)`` (the fake axis gets
  nnU-Net's 999; pixels are 1 apart because these formats carry no physical spacing);
- one file may hold several channels: an RGB file gives three channels, so a dataset.json with
  ``channel_names`` R, G, B has ONE file per case (``CASE_0000.png``). Components that can do
  this say so with ``packs_channels = True``; :mod:`segforge.io.layouts` then takes the channel
  files a case has instead of one file per channel;
- grayscale gives one channel; 16-bit PNG/TIFF keep their values (no scaling to 8 bit);
- an alpha channel is dropped when it is fully opaque (many exporters add one) and refused
  otherwise: transparent pixels have no defined colour to segment;
- label files: colour-palette images (indexed PNG/GIF) are read as their palette indices, which
  is how annotation tools store classes; grayscale labels, and palette images whose palette is
  all grays (DRIVE's GIF masks), as their gray values, as they look and as nnU-Net reads them: a
  0/255 mask stays 0/255. Mapping 255 -> 1 happens when the dataset is imported; a value
  dataset.json does not declare is refused where labels are first read (fingerprint, verify);
- JPEG is lossy, so it is accepted for images only: a segmentation is never read from or written
  to JPEG. A prediction for a JPEG input is written as PNG (see :meth:`segmentation_ending`).

Writes go through :func:`segforge.atomic.atomic_path`; every problem is a one-line
:class:`~segforge.errors.ConfigError` naming the file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from segforge.atomic import atomic_path
from segforge.errors import ConfigError
from segforge.io.image_io import SPACING_2D_FAKE_AXIS, ImageProperties, PathLike, _as_integer_labels, file_ending_of

#: endings a segmentation may never use: lossy compression changes label values at edges
LOSSY_ENDINGS = (".jpg", ".jpeg")
#: what a segmentation is written as when the images are JPEG
LOSSLESS_SEG_ENDING = ".png"
#: formats Pillow writes with more than 8 bits per gray pixel
SIXTEEN_BIT_ENDINGS = (".png", ".tif", ".tiff")

_READ_HINT = "check that the file exists and is a complete, uncorrupted image (re-copy or re-export it)"
#: Pillow modes read as they are, with the dtype their values need
_GRAY_MODES = {"1": np.uint8, "L": np.uint8, "I;16": np.uint16, "I;16B": np.uint16, "I;16L": np.uint16,
               "I": np.int32, "F": np.float32}  # fmt: skip


def natural_properties(height: int, width: int) -> ImageProperties:
    """Geometry of a 2D natural image: pixel spacing 1, nnU-Net's 999 on the fake axis, identity direction."""
    return ImageProperties(
        spacing=(SPACING_2D_FAKE_AXIS, 1.0, 1.0),
        origin=(0.0, 0.0),
        direction=(1.0, 0.0, 0.0, 1.0),
        shape=(1, int(height), int(width)),
        itk_spacing=(1.0, 1.0),
    )


def _open(path: Path) -> Any:
    """The Pillow image of ``path`` with its pixels loaded; one-line error when that is impossible."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise ConfigError(f"cannot read {path}: file not found", hint=_READ_HINT)
    try:
        image = Image.open(path)
        image.load()
    except UnidentifiedImageError:
        raise ConfigError(f"cannot read {path}: not an image Pillow can identify", hint=_READ_HINT) from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated data, bad chunks, unsupported compression
        cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot read {path}: {cause}", hint=_READ_HINT) from None
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        raise ConfigError(
            f"{path}: holds {frames} frames (an animation or image stack), not one 2D image",
            hint="save each frame as its own file; 3D stacks belong in NIfTI/NRRD (.nii.gz, .nrrd)",
        )
    return image


def _drop_opaque_alpha(image: Any, path: Path) -> Any:
    """``image`` without its alpha band when every pixel is opaque; refuse real transparency."""
    alpha = np.asarray(image.getchannel("A"))
    if alpha.size and int(alpha.min()) < int(np.iinfo(alpha.dtype).max):
        transparent = int(np.count_nonzero(alpha < np.iinfo(alpha.dtype).max))
        raise ConfigError(
            f"{path}: {image.mode} image with {transparent} (partly) transparent pixel(s); alpha is not a channel",
            hint="flatten the image onto a background (or save it without alpha) as RGB or grayscale",
        )
    return image.convert("RGB" if image.mode == "RGBA" else "L")


def _gray_palette(image: Any) -> bool:
    """True when every palette entry is a gray (r == g == b)."""
    rgb = np.asarray(image.getpalette("RGB") or [], dtype=np.uint8).reshape(-1, 3)
    return bool(np.all(rgb == rgb[:, :1]))


def _pixels(path: Path, palette_as_index: bool) -> np.ndarray:
    """The pixels of one file as [y, x] (gray, palette indices) or [y, x, 3] (RGB) in their own dtype."""
    image = _open(path)
    if image.mode == "P" and _gray_palette(image) and "transparency" not in image.info:
        image = image.convert("L")  # a gray palette shows gray values: a 0/255 mask stays 0/255 as it looks
    if image.mode == "P" and not palette_as_index:
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode == "PA":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA"):
        image = _drop_opaque_alpha(image, path)
    if image.mode in _GRAY_MODES:
        return np.asarray(image).astype(_GRAY_MODES[image.mode], copy=False)
    if image.mode == "P":
        return np.asarray(image).astype(np.uint8, copy=False)
    if image.mode == "RGB":
        return np.asarray(image)
    raise ConfigError(
        f"{path}: unsupported pixel mode {image.mode}",
        hint="save the image as grayscale or RGB (8 or 16 bit), e.g. PNG",
    )


def _refuse_lossy(path: Path, what: str) -> None:
    if path.name.lower().endswith(LOSSY_ENDINGS):
        raise ConfigError(
            f"{path}: {what} a segmentation as JPEG, which is lossy and alters label values",
            hint="store label maps losslessly as PNG (or TIFF, BMP, GIF)",
        )


class NaturalImage2DIO:
    """Reads PNG, TIFF, JPEG, BMP and GIF images (RGB as three channels) and writes 2D segmentations."""

    name = "natural2d"
    version = "1.0"
    file_endings: tuple[str, ...] = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".gif")
    #: one file may hold several channels (RGB): a case has as many files as it has, not one per channel
    packs_channels = True

    class Params(BaseModel):
        """The natural-image IO has no settings: value mapping of labels belongs to the dataset import."""

        model_config = ConfigDict(extra="forbid")

    # -- reading --------------------------------------------------------------------------
    def read_images(self, paths: Sequence[PathLike]) -> tuple[np.ndarray, ImageProperties]:
        """The channels of one case as float32 [C, 1, y, x]: each file adds 1 (gray) or 3 (RGB) channels."""
        if not paths:
            raise ConfigError("no image files given", hint="pass the case's files (CASE_0000.png, ...)")
        channels: list[np.ndarray] = []
        first = Path(paths[0])
        for path in map(Path, paths):
            pixels = _pixels(path, palette_as_index=False)
            planes = pixels[None] if pixels.ndim == 2 else np.moveaxis(pixels, -1, 0)
            if channels and planes.shape[1:] != channels[0].shape:
                raise ConfigError(
                    f"{path} and {first} differ in shape ({planes.shape[1]}x{planes.shape[2]} vs "
                    f"{channels[0].shape[0]}x{channels[0].shape[1]} pixels)",
                    hint="all files of a case must be images of the same size",
                )
            channels.extend(p.astype(np.float32, copy=False) for p in planes)
        height, width = channels[0].shape
        return np.stack(channels)[:, None], natural_properties(height, width)

    def read_seg(self, path: PathLike) -> tuple[np.ndarray, ImageProperties]:
        """A label map as integer array [1, 1, y, x]; palette files give their indices, JPEG is refused."""
        path = Path(path)
        _refuse_lossy(path, "cannot read")
        pixels = _pixels(path, palette_as_index=True)
        if pixels.ndim == 3:
            if not (np.array_equal(pixels[..., 0], pixels[..., 1]) and np.array_equal(pixels[..., 0], pixels[..., 2])):
                raise ConfigError(
                    f"{path}: label map in colour (RGB values differ); labels must be one value per pixel",
                    hint="save it as an indexed (palette) or grayscale PNG holding 0 background, 1, 2, ...",
                )
            pixels = pixels[..., 0]
        height, width = pixels.shape
        return _as_integer_labels(pixels, path)[None, None], natural_properties(height, width)

    def header_geometry(self, path: PathLike) -> tuple[tuple[int, ...], tuple[float, ...]] | None:
        """(shape, spacing) as :meth:`read_images` gives them, from the header only (for memory estimates).

        SimpleITK would take a spacing from the file's DPI (a 1-dpi TIFF: 25.4 mm per pixel), which
        this component ignores; the estimate must use the geometry the pipeline will see.
        """
        from PIL import Image

        try:
            with Image.open(path) as image:
                width, height = image.size
        except (OSError, ValueError):
            return None  # the reader proper reports unreadable files with its own message
        props = natural_properties(height, width)
        return tuple(props.shape), tuple(props.spacing)

    # -- writing --------------------------------------------------------------------------
    def segmentation_ending(self, image_ending: str) -> str:
        """The ending a segmentation of images with ``image_ending`` is written with (PNG for JPEG)."""
        return LOSSLESS_SEG_ENDING if image_ending.lower() in LOSSY_ENDINGS else image_ending

    def write_seg(self, seg: np.ndarray, path: PathLike, props: ImageProperties) -> None:
        """Write an integer segmentation [1, y, x] or [y, x] as 8 bit (16 bit when values need it), atomically."""
        path = Path(path)
        _refuse_lossy(path, "cannot write")
        seg = self._plane(np.asarray(seg), path, props)
        low, high = (int(seg.min()), int(seg.max())) if seg.size else (0, 0)
        if low < 0:
            raise ConfigError(f"cannot write {path}: negative label value {low}", hint="labels must be 0, 1, 2, ...")
        ending = file_ending_of(path, self.file_endings).lower()
        if high > 255 and ending not in SIXTEEN_BIT_ENDINGS:
            raise ConfigError(
                f"cannot write {path}: label value {high} does not fit the 8 bits of {ending}",
                hint="write segmentations with more than 255 labels as PNG or TIFF",
            )
        if high > 65535:
            raise ConfigError(f"cannot write {path}: label value {high} does not fit 16 bits", hint="use NIfTI")
        self._save(seg.astype(np.uint8 if high <= 255 else np.uint16), path, ending)

    def write_image(self, image: np.ndarray, path: PathLike, props: ImageProperties, dtype: Any = np.float32) -> None:
        """Write one gray channel [1, y, x] or [y, x], or RGB [3, 1, y, x] / [3, y, x], atomically.

        Float pixels only as gray TIFF; PNG/BMP/GIF and RGB need integers (uint8, or uint16 where
        the format holds it). RGB is what :meth:`read_images` returns for one colour file.
        """
        path = Path(path)
        array = np.asarray(image)
        rgb = array.ndim in (3, 4) and array.shape[0] == 3 and array.size == 3 * math.prod(props.shape)
        if rgb:
            array = np.stack([self._plane(plane, path, props) for plane in array.reshape(3, *props.shape)], -1)
        else:
            array = self._plane(array, path, props)
        if dtype is not None:
            array = array.astype(dtype, copy=False)
        ending = file_ending_of(path, self.file_endings).lower()
        if rgb and np.issubdtype(array.dtype, np.floating):
            raise ConfigError(f"cannot write {path}: RGB pixels are {array.dtype}",
                              hint="pass integer RGB pixels (dtype=np.uint8)")  # fmt: skip
        if np.issubdtype(array.dtype, np.floating):
            if ending not in (".tif", ".tiff"):
                raise ConfigError(
                    f"cannot write {path}: {ending} holds integer pixels, the image is {array.dtype}",
                    hint="write float images as .tif, or pass an integer dtype (uint8, uint16)",
                )
            array = array.astype(np.float32, copy=False)
        elif array.dtype != np.uint8 and not (array.dtype == np.uint16 and ending in SIXTEEN_BIT_ENDINGS):
            raise ConfigError(
                f"cannot write {path}: {array.dtype} pixels cannot be stored in {ending}",
                hint="use uint8 (any format) or uint16 (PNG, TIFF)",
            )
        self._save(array, path, ending)

    @staticmethod
    def _plane(array: np.ndarray, path: Path, props: ImageProperties) -> np.ndarray:
        """``array`` as [y, x], checked against the geometry it was read with."""
        if array.shape == tuple(props.shape):
            array = array.reshape(props.shape[1:])
        if array.ndim != 2 or array.shape != tuple(props.shape[1:]):
            raise ConfigError(
                f"cannot write {path}: array shape {array.shape} does not match the image geometry "
                f"{tuple(props.shape)}",
                hint="write the array in the shape it was read with (no channel axis)",
            )
        return np.ascontiguousarray(array)

    @staticmethod
    def _save(array: np.ndarray, path: Path, ending: str) -> None:
        from PIL import Image

        if ending == ".gif":  # an identity gray palette, not optimised, so indices stay the values written
            image = Image.frombytes("P", (array.shape[1], array.shape[0]), array.tobytes())
            image.putpalette(bytes(np.repeat(np.arange(256, dtype=np.uint8), 3)))
            options: dict[str, Any] = {"optimize": False}
        else:
            image, options = Image.fromarray(array), {}
        try:
            with atomic_path(path, suffix=ending) as tmp:
                image.save(tmp, format=Image.registered_extensions()[ending], **options)
        except (OSError, KeyError, ValueError) as exc:
            raise ConfigError(
                f"cannot write {path}: {exc}", hint="check the folder is writable and the file ending"
            ) from None
