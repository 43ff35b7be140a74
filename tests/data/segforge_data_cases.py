"""Synthetic (and a few real) preprocessed cases written with case_store, for the data-pipeline tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from segforge.data.case_store import CaseProperties, write_case
from segforge.io.image_io import ImageProperties


def case_properties(case_id: str, shape: Sequence[int], channels: int = 1, locations=None) -> CaseProperties:
    n = len(shape)
    image = ImageProperties(
        spacing=(1.0,) * n, origin=(0.0,) * n, direction=tuple(np.eye(n).ravel()), shape=tuple(shape),
        itk_spacing=(1.0,) * n,
    )  # fmt: skip
    return CaseProperties(
        case_id=case_id,
        digest="test",
        preprocessing_version="test",
        data_identifier="test_3d",
        image=image,
        transpose_forward=list(range(n)),
        original_spacing=[1.0] * n,
        shape_before_cropping=list(shape),
        bbox=[(0, s) for s in shape],
        shape_after_cropping=list(shape),
        spacing=[1.0] * n,
        shape_after_resampling=list(shape),
        num_channels=channels,
        has_seg=True,
        class_location_counts={str(k): len(v) for k, v in (locations or {}).items()},
    )


def class_locations(seg: np.ndarray, labels: Sequence[int]) -> dict[int, np.ndarray]:
    """Every voxel of each label (tests want exact knowledge of where foreground is)."""
    return {int(lab): np.argwhere(seg[0] == lab).astype(np.int32) for lab in labels}


def write_synthetic_case(
    folder: Path, case_id: str, data: np.ndarray, seg: np.ndarray, labels: Sequence[int] = (1, 2)
) -> None:
    locations = class_locations(seg, labels)
    props = case_properties(case_id, data.shape[1:], data.shape[0], locations)
    write_case(folder, case_id, data.astype(np.float32), seg.astype(np.int8), props, locations)


def blob_case(shape: Sequence[int], rng: np.random.Generator, channels: int = 1, fg: bool = True):
    """Random image; label: -1 in a border shell, 0 inside, one small box of 1 and one voxel of 2."""
    data = rng.normal(size=(channels, *shape)).astype(np.float32)
    seg = np.full((1, *shape), -1, dtype=np.int8)
    seg[(0, *(slice(1, s - 1) for s in shape))] = 0
    if fg:
        corner = [int(rng.integers(1, s - 3)) for s in shape]
        seg[(0, *(slice(c, c + 2) for c in corner))] = 1
        seg[(0, *(int(rng.integers(1, s - 1)) for s in shape))] = 2
    return data, seg


def coordinate_case(shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Image whose value encodes its voxel (1 + z*10000 + y*100 + x), so any crop can be located."""
    grids = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    weights = [10000, 100, 1][-len(shape) :]
    data = (1 + sum(w * g for w, g in zip(weights, grids, strict=True))).astype(np.float32)[None]
    seg = np.zeros((1, *shape), dtype=np.int8)
    seg[0][(grids[0] + grids[1]) % 7 == 0] = 1
    seg[0][:, :2] = -1
    return data, seg


def write_real_cases(msd: Path, out: Path, n_cases: int) -> list[str]:
    """The first ``n_cases`` MSD training cases, cropped to nonzero and z-scored (1 mm: no resampling)."""
    import SimpleITK as sitk

    from segforge.preprocessing.cropping import crop_to_nonzero

    ids = []
    for path in sorted((msd / "imagesTr").glob("hippocampus_*.nii.gz"))[:n_cases]:
        case_id = path.name[: -len(".nii.gz")]
        data = sitk.GetArrayFromImage(sitk.ReadImage(str(path))).astype(np.float32)[None]
        seg = sitk.GetArrayFromImage(sitk.ReadImage(str(msd / "labelsTr" / path.name))).astype(np.int8)[None]
        data, seg, _ = crop_to_nonzero(data, seg)
        data = (data - data.mean()) / data.std()
        write_synthetic_case(out, case_id, data, seg)
        ids.append(case_id)
    return ids
