"""The ``dicom`` image-IO component: a folder holding a DICOM series is one image (one channel).

segforge's core matches image IO by file ending; a series has none, so this component claims
folders instead (``claims_directory``, which the core's prediction listing asks of every image
IO). Headers are read with pydicom to find, choose, order and check the series
(:mod:`segforge_dicom.series`); the pixels are then read by SimpleITK (GDCM) from the ordered
file list, because GDCM decodes the compressed transfer syntaxes scanners write (JPEG lossless,
JPEG 2000, JPEG-LS, RLE) without extra packages, and applies the rescale slope/intercept (CT in
HU). The geometry GDCM reports must equal the one computed from the headers: a disagreement is
an error, never a silent choice between two grids.

A segmentation of a series is written as NIfTI (``output_ending``) through the core's SimpleITK
IO; DICOM-SEG is a separate step (:mod:`segforge_dicom.seg_export`), since it needs the source
slices, not only the grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from segforge.errors import ConfigError
from segforge.io.image_io import GEOMETRY_TOLERANCE, ImageProperties, PathLike, SimpleITKIO, properties_of
from segforge_dicom.series import Grid, has_dicom_images, series_grid


class DicomParams(BaseModel):
    """Settings of the DICOM series reader."""

    model_config = ConfigDict(extra="forbid")

    series: str | None = Field(
        default=None,
        description="SeriesInstanceUID or SeriesDescription of the series to read when a folder holds several "
        "(default: refuse such folders and list their series)",
    )


def read_series_image(folder: Path, selector: str | None = None) -> Any:
    """The chosen series of ``folder`` as a SimpleITK image with the header-derived grid (checked against GDCM's)."""
    import SimpleITK as sitk

    series, grid = series_grid(folder, selector)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(p) for p in grid.files])
    try:
        image = reader.Execute()
    except RuntimeError:
        raise ConfigError(
            f"{_unreadable_slice(grid.files)}: cannot read the pixels of this slice of series {series.name}",
            hint="the file is damaged or in a compression GDCM cannot decode: re-copy or re-export the series",
        ) from None
    _check_same_grid(image, grid, f"{folder}: series {series.name}")
    return image


def _unreadable_slice(files: tuple[Path, ...]) -> Path | str:
    """The first slice SimpleITK cannot read on its own (called only after the series read failed)."""
    import SimpleITK as sitk

    for path in files:
        try:
            sitk.ReadImage(str(path))
        except RuntimeError:
            return path
    return files[0].parent


def _check_same_grid(image: Any, grid: Grid, where: str) -> None:
    gdcm = {"size": image.GetSize(), "spacing": image.GetSpacing(), "origin": image.GetOrigin(),
            "direction": image.GetDirection()}  # fmt: skip
    ours = {"size": grid.size, "spacing": grid.spacing, "origin": grid.origin, "direction": grid.direction}
    for key, value in ours.items():
        if not np.allclose(gdcm[key], value, rtol=GEOMETRY_TOLERANCE, atol=GEOMETRY_TOLERANCE):
            raise ConfigError(
                f"{where}: the {key} SimpleITK reads, {tuple(gdcm[key])}, differs from the headers' {tuple(value)}",
                hint="report this series to segforge-dicom (with its headers)",
            )


class DicomSeriesIO:
    """Reads a folder holding a DICOM series as one image; writes its segmentation as NIfTI."""

    name = "dicom"
    version = "1.0"
    #: a series is a folder: no file ending is claimed (see :meth:`claims_directory`)
    file_endings: tuple[str, ...] = ()
    #: what the core's ``predict`` writes a series' segmentation as
    output_ending = ".nii.gz"
    Params = DicomParams

    def __init__(self, params: DicomParams | None = None) -> None:
        self.params = params or DicomParams()

    def claims_directory(self, path: Path) -> bool:
        """True for a folder holding DICOM image slices; a one-line error when it is not ONE readable series.

        The check (series choice, slice order and spacing) runs on headers only, so ``predict``
        finds a bad case folder before it predicts any.
        """
        path = Path(path)
        if not path.is_dir() or not has_dicom_images(path):
            return False
        series_grid(path, self.params.series)
        return True

    def read_images(self, paths: Sequence[PathLike]) -> tuple[np.ndarray, ImageProperties]:
        """One series folder per channel as float32 [C, z, y, x]; every series must share the first one's grid."""
        import SimpleITK as sitk

        if not paths:
            raise ConfigError("no series folders given", hint="pass one DICOM series folder per channel")
        arrays, first_props = [], None
        for path in map(Path, paths):
            image = read_series_image(path, self.params.series)
            props = properties_of(image)
            if first_props is None:
                first_props = props
            elif diffs := first_props.geometry_differences(props):
                raise ConfigError(f"{path} and {paths[0]} differ in {', '.join(diffs)}",
                                  hint="all channels of a case must be series on one grid")  # fmt: skip
            arrays.append(sitk.GetArrayFromImage(image).astype(np.float32, copy=False))
        return np.stack(arrays), first_props

    def read_seg(self, path: PathLike) -> tuple[np.ndarray, ImageProperties]:
        raise ConfigError(
            f"{path}: a DICOM image series cannot be read as a segmentation",
            hint="give labels as NIfTI files (labelsTr/CASE.nii.gz) on the series' grid",
        )

    def write_seg(self, seg: np.ndarray, path: PathLike, props: ImageProperties) -> None:
        """A series' segmentation as NIfTI/NRRD/MHA (by ``path``'s ending) on the series' grid."""
        if not str(path).endswith(SimpleITKIO.file_endings):
            raise ConfigError(f"cannot write {path}: a segmentation of a DICOM series is written as NIfTI",
                              hint="name it CASE.nii.gz; `segforge dicom to-seg` then makes a DICOM-SEG")  # fmt: skip
        SimpleITKIO().write_seg(seg, path, props)
