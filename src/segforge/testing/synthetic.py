"""Tiny synthetic raw datasets with real image files, for tests of segforge and of plugins.

:func:`make_task` writes ``.nii.gz`` files through SimpleITK: each case has nested ellipsoids
as foreground (label 1 outside, label 2 inside it, ...) and images whose intensity follows
the labels plus noise, so a network can learn them and a verifier can check them. Three
layouts: ``"v1"`` (segforge / nnU-Net v1 Task folder), ``"msd"`` (Medical Segmentation
Decathlon, multi-channel images as one 4D file) and ``"v2"`` (nnU-Net v2 Dataset folder).
:func:`make_region_task` (BraTS-like overlapping regions) and :func:`make_sparse_task` (most
voxels labelled ``ignore``) build on it for region-based training and the ignore label.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

Layout = Literal["v1", "msd", "v2"]
DEFAULT_ORIGIN = (-12.5, 4.0, 30.25)


def ellipsoid_labels(shape: Sequence[int], num_labels: int, rng: np.random.Generator) -> np.ndarray:
    """Nested ellipsoids with a random centre and radii: label k inside label k-1 (uint8)."""
    shape = tuple(int(s) for s in shape)
    grids = np.meshgrid(*[np.arange(s, dtype=np.float32) for s in shape], indexing="ij")
    centre = [s / 2 + rng.uniform(-0.1, 0.1) * s for s in shape]
    radii = [max(s * rng.uniform(0.25, 0.35), 1.5) for s in shape]
    dist = sum(((g - c) / r) ** 2 for g, c, r in zip(grids, centre, radii, strict=True))
    seg = np.zeros(shape, dtype=np.uint8)
    for k in range(1, num_labels + 1):
        seg[dist <= (1.0 - (k - 1) / (num_labels + 1)) ** 2] = k
    return seg


def _itk_image(array: np.ndarray, spacing: Sequence[float], origin: Sequence[float]) -> Any:
    """A SimpleITK image of ``array`` (array axis order) with ``spacing`` given in array order."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(array)
    image.SetSpacing([float(s) for s in spacing[::-1]])
    image.SetOrigin([float(o) for o in origin[: array.ndim]])
    return image


def _itk_4d(channels: np.ndarray, spacing: Sequence[float], origin: Sequence[float]) -> Any:
    """MSD-style 4D image: channels on the last ITK axis, 3D geometry in the first three."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(channels, isVector=False)
    image.SetSpacing([float(s) for s in spacing[::-1]] + [1.0])
    image.SetOrigin([float(o) for o in origin[:3]] + [0.0])
    return image


def write_nifti(image: Any, path: Path) -> Path:
    import SimpleITK as sitk

    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path), True)
    return path


def _dataset_json(
    layout: Layout, name: str, channel_names: list[str], labels: list[str], train: list[str], test: list[str]
) -> dict[str, Any]:
    channels = {str(i): n for i, n in enumerate(channel_names)}
    if layout == "v2":
        return {
            "name": name,
            "channel_names": channels,
            "labels": {"background": 0, **{n: i + 1 for i, n in enumerate(labels)}},
            "numTraining": len(train),
            "file_ending": ".nii.gz",
        }
    return {
        "name": name,
        "description": "synthetic ellipsoids (segforge.testing.synthetic)",
        "tensorImageSize": "3D",
        "modality": channels,
        "labels": {"0": "background", **{str(i + 1): n for i, n in enumerate(labels)}},
        "numTraining": len(train),
        "numTest": len(test),
        "training": [{"image": f"./imagesTr/{c}.nii.gz", "label": f"./labelsTr/{c}.nii.gz"} for c in train],
        "test": [f"./imagesTs/{c}.nii.gz" for c in test],
    }


def _write_images(
    folder: Path, case_id: str, seg: np.ndarray, n_channels: int, layout: Layout, spacing, origin, rng
) -> None:
    chans = [
        (seg.astype(np.float32) * (50.0 + 25.0 * c) + 10.0 * c + rng.normal(0, 5.0, seg.shape)).astype(np.float32)
        for c in range(n_channels)
    ]
    if layout == "msd":
        image = _itk_image(chans[0], spacing, origin) if n_channels == 1 else _itk_4d(np.stack(chans), spacing, origin)
        write_nifti(image, folder / f"{case_id}.nii.gz")
        return
    for c, chan in enumerate(chans):
        write_nifti(_itk_image(chan, spacing, origin), folder / f"{case_id}_{c:04d}.nii.gz")


def make_task(
    folder: str | Path,
    n_cases: int = 4,
    shape: Sequence[int] = (12, 16, 14),
    spacing: Sequence[float] = (2.0, 1.0, 1.5),
    channels: int | Sequence[str] = 1,
    labels: Sequence[str] = ("inner", "core"),
    seed: int = 0,
    layout: Layout = "v1",
    n_test: int = 0,
    origin: Sequence[float] = DEFAULT_ORIGIN,
    case_prefix: str = "case",
) -> Path:
    """Write a synthetic raw dataset into ``folder`` (created) and return it.

    ``shape`` and ``spacing`` are in array order (z, y, x); a 2-element shape makes 2D images.
    ``channels`` is a count or a list of channel names; ``labels`` the foreground label names
    (values 1, 2, ...). Case ids are ``{case_prefix}_000``, ``{case_prefix}_001``, ...
    """
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    channel_names = [f"ch{i}" for i in range(channels)] if isinstance(channels, int) else list(channels)
    if layout == "msd" and len(shape) == 2 and len(channel_names) > 1:
        raise ValueError("MSD layout stores channels as a 4D file: use a 3D shape for multi-channel MSD tasks")
    train = [f"{case_prefix}_{i:03d}" for i in range(n_cases)]
    test = [f"{case_prefix}_{i:03d}" for i in range(n_cases, n_cases + n_test)]
    for case_id in train + test:
        seg = ellipsoid_labels(shape, len(labels), rng)
        target = folder / ("imagesTr" if case_id in train else "imagesTs")
        _write_images(target, case_id, seg, len(channel_names), layout, spacing, origin, rng)
        if case_id in train:
            write_nifti(_itk_image(seg, spacing, origin), folder / "labelsTr" / f"{case_id}.nii.gz")
    (folder / "imagesTr").mkdir(parents=True, exist_ok=True)
    (folder / "labelsTr").mkdir(parents=True, exist_ok=True)
    info = _dataset_json(layout, folder.name, channel_names, list(labels), train, test)
    (folder / "dataset.json").write_text(json.dumps(info, indent=2) + "\n")
    return folder


#: memory budget (GiB, ``plan-and-preprocess --gpu-memory-gb``) under which :func:`make_large_task`'s
#: images are large relative to the patch: the planner then adds 3d_lowres and 3d_cascade_fullres
LARGE_TASK_GPU_MEMORY_GB = 0.05


def make_large_task(
    folder: str | Path,
    n_cases: int = 5,
    shape: Sequence[int] = (40, 64, 64),
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    n_test: int = 1,
    seed: int = 0,
    **kwargs: Any,
) -> Path:
    """A synthetic task whose images are large relative to the patch the planner can afford.

    nnU-Net plans 3d_lowres when the 3d_fullres patch covers less than a quarter of the median
    image. Images that large for the default 8 GiB budget (about 256^3 voxels) would make tests
    slow and files big, so the images here stay small (40 x 64 x 64, isotropic, a few hundred kB
    each) and the test plans them with a small budget, ``LARGE_TASK_GPU_MEMORY_GB`` (``segforge
    plan-and-preprocess --gpu-memory-gb 0.05`` or the planner param ``gpu_memory_gb``): the patch
    shrinks to 16 x 24 x 24 and the planner adds 3d_lowres (spacing ~1.65) and 3d_cascade_fullres.
    Other arguments are those of :func:`make_task`.
    """
    return make_task(folder, n_cases=n_cases, shape=shape, spacing=spacing, n_test=n_test, seed=seed, **kwargs)


#: BraTS-like regions over the nested labels 1 (outer) ⊃ 2 ⊃ 3 (inner) of :func:`make_region_task`
BRATS_LIKE_REGIONS = {"whole": [1, 2, 3], "core": [2, 3], "enhancing": [3]}


def _rewrite_dataset_json(folder: Path, update: dict[str, Any]) -> None:
    path = folder / "dataset.json"
    info = json.loads(path.read_text())
    info.update(update)
    path.write_text(json.dumps(info, indent=2) + "\n")


def make_region_task(
    folder: str | Path,
    n_cases: int = 4,
    shape: Sequence[int] = (12, 16, 14),
    spacing: Sequence[float] = (2.0, 1.0, 1.5),
    seed: int = 0,
    n_test: int = 0,
    regions_class_order: Sequence[int] = (1, 2, 3),
) -> Path:
    """A region-based nnU-Net v2 dataset (BraTS style): nested labels 1 ⊃ 2 ⊃ 3 in the label files,
    dataset.json labels ``whole`` = [1, 2, 3], ``core`` = [2, 3], ``enhancing`` = [3] and
    ``regions_class_order`` (default [1, 2, 3]: exporting the regions in order restores the labels)."""
    folder = make_task(folder, n_cases, shape, spacing, 1, ("outer", "middle", "inner"), seed, "v2", n_test)
    labels = {"background": 0, **BRATS_LIKE_REGIONS}
    _rewrite_dataset_json(folder, {"labels": labels, "regions_class_order": [int(v) for v in regions_class_order]})
    return folder


def sparse_annotation(seg: np.ndarray, ignore_value: int, every: int = 4, axis: int = 0) -> np.ndarray:
    """``seg`` annotated only on every ``every``-th slice along ``axis``; every other voxel is ``ignore_value``."""
    out = np.full_like(seg, ignore_value)
    keep = [slice(None)] * seg.ndim
    keep[axis] = slice(0, None, every)
    out[tuple(keep)] = seg[tuple(keep)]
    return out


def make_sparse_task(
    folder: str | Path,
    n_cases: int = 4,
    shape: Sequence[int] = (12, 16, 14),
    spacing: Sequence[float] = (2.0, 1.0, 1.5),
    labels: Sequence[str] = ("inner", "core"),
    seed: int = 0,
    layout: Layout = "v2",
    n_test: int = 0,
    every: int = 4,
) -> Path:
    """A sparsely annotated dataset: labels 1..N on every ``every``-th slice (axis 0), the label
    ``ignore`` (value N + 1, the highest, as nnU-Net requires) everywhere else. The images follow
    the full segmentation, so what the network should predict in ignored voxels is known."""
    import SimpleITK as sitk

    folder = make_task(folder, n_cases, shape, spacing, 1, labels, seed, layout, n_test)
    ignore = len(labels) + 1
    for path in sorted((folder / "labelsTr").glob("*.nii.gz")):
        image = sitk.ReadImage(str(path))
        sparse = sitk.GetImageFromArray(sparse_annotation(sitk.GetArrayFromImage(image), ignore, every))
        sparse.CopyInformation(image)
        write_nifti(sparse, path)
    info = json.loads((folder / "dataset.json").read_text())
    if layout == "v2":
        _rewrite_dataset_json(folder, {"labels": {**info["labels"], "ignore": ignore}})
    else:
        _rewrite_dataset_json(folder, {"labels": {**info["labels"], str(ignore): "ignore"}})
    return folder
