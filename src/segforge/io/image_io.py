"""Reading and writing medical images with SimpleITK, following nnU-Net v2's SimpleITKIO conventions.

Arrays are numpy in SimpleITK's array order (z, y, x); the geometry travels beside them as
:class:`ImageProperties` so that a prediction can be written back in the input's original
geometry. 2D images get a leading singleton axis, ``(1, y, x)``, and spacing 999 on that axis
(as nnU-Net does), so the rest of the pipeline only ever sees 3D arrays; writing undoes it.

Every read or write problem is a one-line :class:`~segforge.errors.ConfigError` naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from segforge.atomic import atomic_path
from segforge.errors import ConfigError
from segforge.io.nifti_checks import check_nifti_file

PathLike = str | os.PathLike[str]

#: spacing nnU-Net gives the fake axis of a 2D image
SPACING_2D_FAKE_AXIS = 999.0
#: relative/absolute tolerance when comparing the geometry of two files
GEOMETRY_TOLERANCE = 1e-4


class ImageProperties(BaseModel):
    """Geometry of an image, JSON-able, enough to write an array back where it came from.

    ``spacing`` and ``shape`` are in array axis order (z, y, x), with the fake 2D axis included;
    ``origin``, ``direction`` and ``itk_spacing`` are in SimpleITK order (x, y, z) as the file has them.
    """

    model_config = ConfigDict(frozen=True)

    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[float, ...]
    shape: tuple[int, ...]
    itk_spacing: tuple[float, ...]

    @property
    def is_2d(self) -> bool:
        return len(self.itk_spacing) == 2

    def geometry_differences(self, other: ImageProperties, tol: float = GEOMETRY_TOLERANCE) -> list[str]:
        """Names of the geometry fields (shape, spacing, origin, direction) that disagree with ``other``."""
        diffs = []
        if tuple(self.shape) != tuple(other.shape):
            diffs.append("shape")
        for name in ("spacing", "origin", "direction"):
            a, b = np.asarray(getattr(self, name)), np.asarray(getattr(other, name))
            if a.shape != b.shape or not np.allclose(a, b, rtol=tol, atol=tol):
                diffs.append(name)
        return diffs

    def describe(self, field: str) -> str:
        value = getattr(self, field)
        return "(" + ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value) + ")"


def _short_cause(exc: Exception, path: Path) -> str:
    """The useful last line of a SimpleITK exception, without the C++ source location or the path."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else type(exc).__name__
    for prefix in ("sitk::ERROR:", "ITK ERROR:", "itk::ERROR:"):
        last = last.replace(prefix, "")
    last = last.replace(f'"{path}"', "").replace(str(path), "").replace("  ", " ")
    return last.strip(" :") or type(exc).__name__


def read_itk(path: PathLike) -> Any:
    """``sitk.ReadImage`` with a one-line ConfigError naming the file when it cannot be read."""
    import SimpleITK as sitk

    path = Path(path)
    hint = "check that the file exists and is a complete, uncorrupted image (re-copy or re-export it)"
    if not path.is_file():
        raise ConfigError(f"cannot read {path}: file not found", hint=hint)
    check_nifti_file(path)  # SimpleITK reads truncated files and NaN silently (as zeros)
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise ConfigError(f"cannot read {path}: {_short_cause(exc, path)}", hint=hint) from None


def properties_of(image: Any) -> ImageProperties:
    """Geometry of a 2D or 3D SimpleITK image in segforge's conventions."""
    itk_spacing = tuple(float(s) for s in image.GetSpacing())
    size = tuple(int(s) for s in image.GetSize())
    spacing: tuple[float, ...]
    if len(itk_spacing) == 2:
        spacing = (SPACING_2D_FAKE_AXIS, *itk_spacing[::-1])
        shape = (1, *size[::-1])
    else:
        spacing, shape = itk_spacing[::-1], size[::-1]
    return ImageProperties(
        spacing=spacing,
        origin=tuple(float(o) for o in image.GetOrigin()),
        direction=tuple(float(d) for d in image.GetDirection()),
        shape=shape,
        itk_spacing=itk_spacing,
    )


def _to_image(array: np.ndarray, props: ImageProperties, path: Path) -> Any:
    """A SimpleITK image of ``array`` ([*spatial], as read) carrying ``props``' geometry."""
    import SimpleITK as sitk

    if array.shape != tuple(props.shape):
        if not (props.is_2d and array.shape == tuple(props.shape[1:])):
            raise ConfigError(
                f"cannot write {path}: array shape {array.shape} does not match the image geometry "
                f"{tuple(props.shape)}",
                hint="write the array in the shape it was read with (no channel axis)",
            )
    if props.is_2d and array.ndim == 3:
        array = array[0]
    image = sitk.GetImageFromArray(np.ascontiguousarray(array), isVector=False)
    image.SetSpacing(props.itk_spacing)
    image.SetOrigin(props.origin)
    image.SetDirection(props.direction)
    return image


def _write(image: Any, path: Path, ending: str) -> None:
    import SimpleITK as sitk

    try:
        with atomic_path(path, suffix=ending) as tmp:
            sitk.WriteImage(image, str(tmp), True)
    except RuntimeError as exc:
        raise ConfigError(
            f"cannot write {path}: {_short_cause(exc, path)}", hint="check the folder is writable and the file ending"
        ) from None


def seg_dtype(low: float, high: float) -> np.dtype:
    """The smallest integer dtype among uint8, int16, int32 holding values in [low, high]."""
    for dtype in (np.uint8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return np.dtype(dtype)
    raise ValueError(f"label values {low}..{high} do not fit int32")


def _as_integer_labels(array: np.ndarray, path: Path) -> np.ndarray:
    """Integer label array; float files holding whole numbers (some MSD labels) are accepted."""
    if array.size == 0:
        return array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
            bad = array[~np.isfinite(array) | (array != np.round(array))].flat[0]
            raise ConfigError(
                f"{path}: segmentation holds non-integer value {float(bad):g}",
                hint="labels must be whole numbers (0 background, 1, 2, ...); re-export the label file as integers",
            )
    elif not np.issubdtype(array.dtype, np.integer) and array.dtype != np.bool_:
        raise ConfigError(f"{path}: segmentation has unsupported pixel type {array.dtype}", hint="use integer labels")
    low, high = float(array.min()), float(array.max())
    try:
        return array.astype(seg_dtype(low, high), copy=False)
    except ValueError:
        raise ConfigError(f"{path}: label values {low:g}..{high:g} out of range", hint="use labels 0..N") from None


def file_ending_of(path: PathLike, endings: Sequence[str]) -> str:
    """The longest of ``endings`` that ``path``'s name ends with (case-sensitive), else its last suffix."""
    name = Path(path).name
    matches = [e for e in endings if name.endswith(e)]
    return max(matches, key=len) if matches else Path(name).suffix


class SimpleITKIO:
    """Reads and writes NIfTI, MetaImage and NRRD through SimpleITK (nnU-Net's default image IO)."""

    name = "simpleitk"
    version = "1.0"
    file_endings: tuple[str, ...] = (".nii.gz", ".nii", ".mha", ".nrrd", ".nhdr")

    class Params(BaseModel):
        """SimpleITK IO has no settings."""

        model_config = ConfigDict(extra="forbid")

    # -- reading --------------------------------------------------------------------------
    def _read_scalar(self, path: Path) -> tuple[np.ndarray, ImageProperties]:
        """One 2D/3D single-component file as array [*spatial] (2D gets the leading axis)."""
        import SimpleITK as sitk

        image = read_itk(path)
        if image.GetDimension() not in (2, 3) or image.GetNumberOfComponentsPerPixel() != 1:
            raise ConfigError(
                f"{path}: expected a 2D or 3D single-channel image, got {image.GetDimension()}D with "
                f"{image.GetNumberOfComponentsPerPixel()} component(s)",
                hint="split multi-channel images into one file per channel (CASE_0000, CASE_0001, ...); "
                "`segforge convert-msd` does this for MSD folders",
            )
        props = properties_of(image)
        return sitk.GetArrayFromImage(image).reshape(props.shape), props

    def read_images(self, paths: Sequence[PathLike]) -> tuple[np.ndarray, ImageProperties]:
        """The channels of one case as float32 [C, *spatial]; every file must share the first one's geometry."""
        if not paths:
            raise ConfigError("no image files given", hint="pass one file per channel (CASE_0000, CASE_0001, ...)")
        first = Path(paths[0])
        array, first_props = self._read_scalar(first)
        arrays = [array.astype(np.float32, copy=False)]
        for p in map(Path, paths[1:]):
            array, props = self._read_scalar(p)
            if diffs := first_props.geometry_differences(props):
                raise ConfigError(
                    f"{p} and {first} differ in {', '.join(diffs)} "
                    f"({diffs[0]} {props.describe(diffs[0])} vs {first_props.describe(diffs[0])})",
                    hint="all channels of a case must be co-registered images with identical geometry",
                )
            arrays.append(array.astype(np.float32, copy=False))
        return np.stack(arrays), first_props

    def read_seg(self, path: PathLike) -> tuple[np.ndarray, ImageProperties]:
        """A segmentation as integer array [1, *spatial] (uint8 / int16 / int32, the smallest that fits)."""
        path = Path(path)
        array, props = self._read_scalar(path)
        return _as_integer_labels(array, path)[None], props

    def read_4d(self, path: PathLike) -> tuple[np.ndarray, ImageProperties]:
        """Any 2D/3D/4D (or vector) file as [C, *spatial] in its own dtype; props describe one 3D sub-image.

        MSD stores multi-modal cases as one 4D NIfTI with channels on the last ITK axis; the
        geometry of a channel is the first three axes' spacing, origin and direction block.
        """
        import SimpleITK as sitk

        path = Path(path)
        image = read_itk(path)
        array = sitk.GetArrayFromImage(image)
        if image.GetNumberOfComponentsPerPixel() > 1:  # vector pixels: components last
            array = np.moveaxis(array, -1, 0)
            return array, properties_of(image)
        if image.GetDimension() in (2, 3):
            props = properties_of(image)
            return array.reshape(props.shape)[None], props
        if image.GetDimension() != 4:
            raise ConfigError(f"{path}: cannot handle a {image.GetDimension()}D image", hint="use 2D, 3D or 4D files")
        direction = np.asarray(image.GetDirection()).reshape(4, 4)[:3, :3]
        sub = sitk.GetImageFromArray(array[0])
        sub.SetSpacing(image.GetSpacing()[:3])
        sub.SetOrigin(image.GetOrigin()[:3])
        sub.SetDirection(tuple(float(d) for d in direction.ravel()))
        return array, properties_of(sub)

    # -- writing --------------------------------------------------------------------------
    def write_seg(self, seg: np.ndarray, path: PathLike, props: ImageProperties) -> None:
        """Write an integer segmentation [*spatial] (uint8 when it fits, like nnU-Net) atomically."""
        path = Path(path)
        seg = np.asarray(seg)
        low, high = (float(seg.min()), float(seg.max())) if seg.size else (0.0, 0.0)
        dtype = np.uint8 if low >= 0 and high < 255 else (np.uint16 if low >= 0 and high < 65535 else np.int32)
        image = _to_image(seg.astype(dtype, copy=False), props, path)
        _write(image, path, file_ending_of(path, self.file_endings))

    def write_image(self, image: np.ndarray, path: PathLike, props: ImageProperties, dtype: Any = np.float32) -> None:
        """Write intensity data [*spatial] atomically, as ``dtype`` (``None`` keeps the array's dtype)."""
        path = Path(path)
        array = np.asarray(image)
        if dtype is not None:
            array = array.astype(dtype, copy=False)
        elif array.dtype == np.float64:
            array = array.astype(np.float32)
        _write(_to_image(array, props, path), path, file_ending_of(path, self.file_endings))


def image_io_for(path_or_ending: PathLike, registries: Any = None) -> Any:
    """The registered image-IO component handling a file (or an ending such as ``".nii.gz"``).

    When several components claim the ending, the longest matching ending wins, then the
    component name in alphabetical order, so the choice never depends on install order.
    """
    if registries is None:
        from segforge.plugins import get_registries

        registries = get_registries()
    text = os.fspath(path_or_ending)
    name = text if text.startswith(".") and os.sep not in text else Path(text).name
    best: tuple[int, str, Any] | None = None
    endings: set[str] = set()
    for entry in registries.image_io:
        for ending in entry.component.file_endings:
            endings.add(ending)
            if name.endswith(ending) and (best is None or len(ending) > best[0]):
                best = (len(ending), entry.name, entry.component)
    if best is None:
        raise ConfigError(
            f"no image reader for '{text}' (supported endings: {', '.join(sorted(endings)) or 'none'})",
            hint="convert the images to NIfTI (.nii.gz) or install a plugin that reads this format",
        )
    return best[2]


# -- folders as images (a DICOM series) ------------------------------------------------------------
#: image formats stored as a folder of files, how to recognise one without its reader, and what reads it
_FOLDER_FORMATS: tuple[tuple[str, str], ...] = (("DICOM", "pip install segforge-dicom"),)


def directory_image_io_for(folder: PathLike, registries: Any = None) -> Any | None:
    """The registered image-IO component that reads ``folder`` as ONE image (a DICOM series), else None.

    A file has an ending; a folder has none, so a component that reads folders says so with an
    optional ``claims_directory(path) -> bool`` (checked in component-name order). A component may
    raise a one-line ConfigError there for a folder of its format it cannot read (two series,
    a missing slice), so a bad case stops ``predict`` before any case is written.
    """
    if registries is None:
        from segforge.plugins import get_registries

        registries = get_registries()
    for entry in registries.image_io:
        claims = getattr(entry.component, "claims_directory", None)
        if claims is not None and claims(Path(folder)):
            return entry.component
    return None


def _looks_like_dicom(folder: Path, probe: int = 8) -> bool:
    """True when one of the first ``probe`` files carries the DICOM Part 10 marker ('DICM' at byte 128)."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))[:probe]
    for path in files:
        with open(path, "rb") as fh:
            if fh.read(132)[128:132] == b"DICM":
                return True
    return False


def unreadable_folder_error(folder: PathLike) -> ConfigError | None:
    """The error for a folder in a folder format no installed component reads (with the install line), else None.

    Core segforge reads no DICOM itself (it would need pydicom/highdicom for every user); this
    recognises the format by its marker bytes only, to name the plugin that reads it.
    """
    folder = Path(folder)
    for name, install in _FOLDER_FORMATS:
        if name == "DICOM" and _looks_like_dicom(folder):
            return ConfigError(
                f"{folder} is a {name} series folder, but no installed image IO reads {name}",
                hint=f"`{install}` (it adds DICOM series folders as cases to predict), or convert the series to NIfTI",
            )
    return None
