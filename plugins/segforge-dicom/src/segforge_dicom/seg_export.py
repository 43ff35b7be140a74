"""A label map on a series' grid as a DICOM-SEG object that references the series' slices (highdicom).

A PACS or viewer shows a segmentation over the images only when it is DICOM: a Segmentation
object whose frames point at the source slices (their SOP Instance UIDs) and whose segments
carry names. highdicom builds and validates it; this module supplies what it needs:

- the source slices in the order of the label map's z axis (the same header sort the reader
  uses, so frame k is slice k of the NIfTI prediction); the prediction's grid must equal the
  series' grid, or the frames would point at the wrong slices;
- one BINARY segment per foreground label of the model (``plans.labels`` / dataset.json names,
  in label-value order; segment numbers 1..N because DICOM requires them contiguous while label
  values need not be); a label the model predicted nowhere is still a segment (the reader learns
  it was looked for), with no frames, since empty frames are omitted;
- coded concepts: segment names are free text in dataset.json, so the property type is a
  private code (scheme ``99SEGFORGE``, code value = label value, meaning = name), under the category "Anatomical
  Structure"; the algorithm is recorded as segforge (family Artificial Intelligence).

De-identified exports sometimes blank the Study/Series Instance UIDs: a SEG must reference its
study and series, so such a source is refused (one line); blank SOP Class/Instance UIDs are
taken from the file meta, which holds the same values by the standard.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from segforge.atomic import atomic_path
from segforge.errors import ConfigError
from segforge.io.image_io import GEOMETRY_TOLERANCE
from segforge_dicom import __version__
from segforge_dicom.series import series_grid

PRIVATE_SCHEME = "99SEGFORGE"


def _source_datasets(files: tuple[Path, ...], where: str) -> list[Any]:
    import pydicom

    datasets = []
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        meta = getattr(ds, "file_meta", None)
        if not ds.get("SOPInstanceUID") and meta is not None and meta.get("MediaStorageSOPInstanceUID"):
            ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        if not ds.get("SOPClassUID") and meta is not None and meta.get("MediaStorageSOPClassUID"):
            ds.SOPClassUID = meta.MediaStorageSOPClassUID
        for key in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID", "FrameOfReferenceUID"):
            if not str(ds.get(key, "") or ""):
                raise ConfigError(
                    f"{where}: {path.name} has no {key}, which a DICOM-SEG must reference",
                    hint="export the series with its UIDs (de-identify with UID remapping, not blanking)",
                )
        datasets.append(ds)
    return datasets


def _fmt(values: Any) -> str:
    return "(" + ", ".join(f"{float(v):g}" for v in values) + ")"


def _read_labels(prediction: Path, grid: Any, where: str) -> np.ndarray:
    import SimpleITK as sitk

    from segforge.io.image_io import read_itk

    image = read_itk(prediction)
    pred = {"size": image.GetSize(), "spacing": image.GetSpacing(), "origin": image.GetOrigin(),
            "direction": image.GetDirection()}  # fmt: skip
    ours = {"size": grid.size, "spacing": grid.spacing, "origin": grid.origin, "direction": grid.direction}
    for key, value in ours.items():
        if len(pred[key]) != len(value) or not np.allclose(pred[key], value, atol=GEOMETRY_TOLERANCE):
            raise ConfigError(
                f"{prediction} is not on the grid of {where}: {key} {_fmt(pred[key])} vs {_fmt(value)}",
                hint="convert the prediction made from this series (segforge predict -i ... writes it on the grid)",
            )
    array = sitk.GetArrayFromImage(image)
    if not np.issubdtype(array.dtype, np.integer):
        raise ConfigError(f"{prediction}: holds {array.dtype} values, not labels", hint="pass a label map")
    return array


def segment_descriptions(labels: dict[str, int], algorithm: str) -> tuple[list[Any], list[int]]:
    """highdicom segment descriptions for the foreground labels, and their label values (segment k+1 -> values[k])."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    foreground = sorted((value, name) for name, value in labels.items() if value != 0)
    if not foreground:
        raise ConfigError("no foreground labels to write as segments", hint="the model's labels name only background")
    ident = hd.AlgorithmIdentificationSequence(name=algorithm, family=codes.cid7162.ArtificialIntelligence,
                                               version=__version__)  # fmt: skip
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=k + 1,
            segment_label=name[:64],
            segmented_property_category=codes.SCT.AnatomicalStructure,
            segmented_property_type=hd.sr.CodedConcept(str(value), PRIVATE_SCHEME, name[:64]),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=ident,
        )
        for k, (value, name) in enumerate(foreground)
    ]
    return descriptions, [value for value, _ in foreground]


def write_dicom_seg(
    prediction: Path,
    series_folder: Path,
    output: Path,
    labels: dict[str, int],
    *,
    series: str | None = None,
    algorithm: str = "segforge",
) -> Path:
    """Write ``prediction`` (a label map on the series' grid) as a DICOM-SEG referencing ``series_folder``'s slices."""
    import highdicom as hd
    from pydicom.uid import generate_uid

    prediction, series_folder, output = Path(prediction), Path(series_folder), Path(output)
    chosen, grid = series_grid(series_folder, series)
    where = f"series {chosen.name} in {series_folder}"
    sources = _source_datasets(grid.files, where)
    label_map = _read_labels(prediction, grid, where)
    descriptions, values = segment_descriptions(labels, algorithm)
    unknown = sorted(set(np.unique(label_map).tolist()) - {0, *values})
    if unknown:
        raise ConfigError(
            f"{prediction} holds label value(s) {unknown} the model's labels do not name",
            hint="pass the labels of the model that made the prediction (-m MODEL or --labels)",
        )
    segments = np.zeros(label_map.shape, dtype=np.uint16 if len(values) > 255 else np.uint8)
    for k, value in enumerate(values):
        segments[label_map == value] = k + 1
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=segments,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=int(sources[0].get("SeriesNumber") or 0) + 1000,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="segforge",
        manufacturer_model_name=algorithm[:64],
        software_versions=f"segforge-dicom {__version__}",
        device_serial_number="0",
        series_description=f"{algorithm} segmentation"[:64],
        omit_empty_frames=bool(segments.any()),  # an all-empty prediction keeps its frames (none would be invalid)
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(output, suffix=".dcm") as tmp:
        seg.save_as(tmp)
    return output
