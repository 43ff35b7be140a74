"""Helpers of the real-data tests: crops of shipped files in the shipped layout."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def crop_file(src: Path, dst: Path, start: Sequence[int], size: Sequence[int]) -> Path:
    """``src`` cropped to ``size`` voxels from ``start`` (SimpleITK x, y, z order), geometry kept."""
    import SimpleITK as sitk

    dst.parent.mkdir(parents=True, exist_ok=True)
    image = sitk.ReadImage(str(src))
    sitk.WriteImage(sitk.RegionOfInterest(image, [int(s) for s in size], [int(s) for s in start]), str(dst), True)
    return dst
