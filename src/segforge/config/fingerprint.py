"""fingerprint.json: what planning needs to know about a raw dataset, as validated plain data.

The content follows nnU-Net v2's ``dataset_fingerprint.json`` (spacings, shapes after cropping,
foreground intensity statistics per channel, median relative size after cropping) and adds
what segforge's planner and users want beside it: per-case records (case id, shape before
cropping, class voxel counts), the dataset's channel names and labels, and a digest of the raw
files the fingerprint was computed from, so a re-run can tell whether it is still valid.

Axis convention: ``spacing`` and the shapes are in array order (z, y, x) of the raw images,
*before* any transposition (the planner decides ``transpose_forward`` from them).
"""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from segforge.config.plans import IntensityStats

FINGERPRINT_FORMAT_VERSION = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CaseFingerprint(_Strict):
    """One training case: geometry before and after cropping to the nonzero region, label voxel counts."""

    case_id: str
    spacing: list[float] = Field(min_length=2, max_length=3)
    shape_before_crop: list[int]
    shape_after_crop: list[int]
    #: label name -> number of voxels with that label (whole image)
    class_voxels: dict[str, int] = Field(default_factory=dict)

    @property
    def relative_size_after_cropping(self) -> float:
        before = 1
        after = 1
        for b, a in zip(self.shape_before_crop, self.shape_after_crop, strict=True):
            before *= b
            after *= a
        return after / before if before else 1.0


class Fingerprint(_Strict):
    """The whole fingerprint of one raw dataset."""

    format_version: Literal[1] = FINGERPRINT_FORMAT_VERSION
    dataset_name: str
    segforge_version: str
    #: digest of the raw files (names, sizes, mtimes) and dataset.json it was computed from
    raw_digest: str
    #: image-IO component that read the raw files
    image_io: str = "simpleitk"
    channel_names: dict[str, str] = Field(min_length=1)
    labels: dict[str, int]
    cases: list[CaseFingerprint] = Field(min_length=1)
    #: foreground voxels sampled per case for the intensity statistics (nnU-Net: 10e7 / cases)
    samples_per_case: int
    foreground_intensity_properties_per_channel: dict[str, IntensityStats]
    median_relative_size_after_cropping: float

    @model_validator(mode="after")
    def _check(self) -> Fingerprint:
        dims = {len(c.spacing) for c in self.cases}
        if len(dims) > 1:
            raise ValueError("cases mix 2D and 3D spacings")
        for i, case in enumerate(self.cases):
            n = len(case.spacing)
            if len(case.shape_before_crop) != n or len(case.shape_after_crop) != n:
                raise ValueError(f"cases.{i} ({case.case_id}): spacing and shapes need the same number of axes")
            if any(s <= 0 for s in case.spacing):
                raise ValueError(f"cases.{i} ({case.case_id}): every spacing must be > 0")
        missing = [k for k in self.channel_names if k not in self.foreground_intensity_properties_per_channel]
        if missing:
            raise ValueError(f"foreground_intensity_properties_per_channel has no entry for channel {missing[0]}")
        return self

    # -- nnU-Net v2's views ------------------------------------------------------------
    @property
    def spacings(self) -> list[list[float]]:
        return [list(c.spacing) for c in self.cases]

    @property
    def shapes_after_crop(self) -> list[list[int]]:
        return [list(c.shape_after_crop) for c in self.cases]

    @property
    def num_channels(self) -> int:
        return len(self.channel_names)

    @property
    def num_cases(self) -> int:
        return len(self.cases)

    def class_voxels(self) -> dict[str, int]:
        """Label name -> voxels over all cases."""
        total = {name: 0 for name in self.labels}
        for case in self.cases:
            for name, count in case.class_voxels.items():
                total[name] = total.get(name, 0) + count
        return total

    def digest(self) -> str:
        """sha256 of the canonical JSON content; plans record it to name the fingerprint they came from."""
        return hashlib.sha256(self.model_dump_json().encode("utf-8")).hexdigest()
