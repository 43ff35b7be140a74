"""Synthetic cases for the picture and report tests (a plain module, importable by test files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

SHAPE = (20, 30, 24)


def ball(centre: tuple[float, float, float], radius: float, shape=SHAPE) -> np.ndarray:
    zz, yy, xx = np.indices(shape)
    return (zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2 <= radius**2


def case_arrays(shift: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An image with structure, a two-label reference and a prediction shifted by ``shift`` voxels."""
    rng = np.random.default_rng(0)
    image = (np.indices(SHAPE).sum(axis=0) * 3.0 + rng.normal(0, 5, SHAPE)).astype(np.float32)
    ref = np.zeros(SHAPE, np.uint8)
    ref[ball((10, 10, 12), 5)] = 1
    ref[ball((10, 20, 12), 4)] = 2
    pred = np.roll(ref, shift, axis=2)
    return image, ref, pred


def write_image(path: Path, array: np.ndarray, spacing=(1.0, 1.0, 1.0)) -> None:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing[::-1])
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))


def write_cases(root: Path, shifts=(1, 4)) -> None:
    """``root/{images,ref,pred}`` with one case per shift (case_0, case_1, ...)."""
    for i, shift in enumerate(shifts):
        image, ref, pred = case_arrays(shift)
        write_image(root / "images" / f"case_{i}_0000.nii.gz", image)
        write_image(root / "ref" / f"case_{i}.nii.gz", ref)
        write_image(root / "pred" / f"case_{i}.nii.gz", pred)
