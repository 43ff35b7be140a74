"""Tiny synthetic raw datasets with real image files, for tests of segforge and of plugins.

:func:`make_task` writes ``.nii.gz`` files through SimpleITK: each case has nested ellipsoids
as foreground (label 1 outside, label 2 inside it, ...) and images whose intensity follows
the labels plus noise, so a network can learn them and a verifier can check them. Three
layouts: ``"v1"`` (segforge / nnU-Net v1 Task folder), ``"msd"`` (Medical Segmentation
Decathlon, multi-channel images as one 4D file) and ``"v2"`` (nnU-Net v2 Dataset folder).
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
