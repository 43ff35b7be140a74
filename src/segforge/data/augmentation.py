"""nnU-Net v2's default training augmentation, as JSON-able parameters and a per-sample pipeline.

The order and settings are those of nnU-Net v2's ``get_training_transforms`` (with
batchgenerators): spatial (rotation ±30° per axis in 3D with p 0.2, scaling 0.7-1.4 with
p 0.2, no elastic deformation, centre crop to the final patch; the image interpolated
linearly as nnU-Net >= 2.5 does - ``order_data=3`` gives the cubic of earlier v2 releases at
about 5x the cost of a rotated sample - and labels by per-label linear interpolation with
argmax, border -1), Gaussian noise (p 0.1),
Gaussian blur (p 0.2, each channel 0.5), multiplicative brightness (p 0.15), contrast
(p 0.15), simulated low resolution (p 0.25, each channel 0.5), inverted gamma (p 0.1),
gamma (p 0.3), mirroring along every configured axis with 0.5, zeroing the image outside
the nonzero mask for channels normalized within it, and finally label -1 -> 0.

Derived decisions (:func:`plan_augmentation`) follow nnU-Net too: a 3D patch whose largest
edge is more than 3x its first edge gets *dummy 2D* augmentation (the spatial transform runs
in 2D over the in-plane axes 1, 2 with ±180° and never resamples axis 0); 2D patches rotate
±180° (±15° when the patch is elongated, aspect > 1.5). The loader samples an enlarged
*initial* patch so rotating and scaling do not pull padding into the final patch
(:func:`initial_patch_size`, nnU-Net's ``get_patch_size``).

Every value lives in :class:`AugmentationParams` so trainers can override any of them
(``--set augmentation.p_rot=0.1``); ``enabled=False`` turns everything off (the loader then
samples the final patch directly and only maps -1 to 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from segforge.data import intensity_transforms as it
from segforge.data.spatial_transform import SpatialDraw, apply_spatial, draw_spatial, rotated_extent

#: nnU-Net's anisotropy threshold for dummy-2D augmentation of 3D patches
DUMMY_2D_ASPECT = 3.0


class AugmentationParams(BaseModel):
    """Training augmentation settings; defaults reproduce nnU-Net v2's default trainer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    # spatial
    p_rot: float = Field(0.2, ge=0, le=1, description="probability per sample to rotate")
    rotation_deg: float | None = Field(
        None, ge=0, le=180, description="max |angle| per axis; None: nnU-Net's rule (30 in 3D, 180 in 2D/dummy 2D)"
    )
    p_scale: float = Field(0.2, ge=0, le=1, description="probability per sample to scale")
    scale_range: tuple[float, float] = (0.7, 1.4)
    initial_patch_min_scale: float = Field(
        0.85, gt=0, le=1, description="zoom the enlarged initial patch allows for (nnU-Net uses 0.85)"
    )
    dummy_2d: bool | None = Field(None, description="None: nnU-Net's rule (max(patch) / patch[0] > 3)")
    order_data: int = Field(
        1, ge=0, le=5, description="image interpolation: 1 as nnU-Net v2 >= 2.5 (3 as earlier v2; 5x slower)"
    )
    order_seg: int = Field(1, ge=0, le=5, description="label interpolation (per-label argmax), as nnU-Net v2")
    # intensity
    p_noise: float = Field(0.1, ge=0, le=1)
    noise_variance: tuple[float, float] = (0.0, 0.1)
    p_blur: float = Field(0.2, ge=0, le=1)
    blur_sigma: tuple[float, float] = (0.5, 1.0)
    p_blur_per_channel: float = Field(0.5, ge=0, le=1)
    p_brightness: float = Field(0.15, ge=0, le=1)
    brightness_range: tuple[float, float] = (0.75, 1.25)
    p_contrast: float = Field(0.15, ge=0, le=1)
    contrast_range: tuple[float, float] = (0.75, 1.25)
    p_lowres: float = Field(0.25, ge=0, le=1)
    lowres_zoom: tuple[float, float] = (0.5, 1.0)
    p_lowres_per_channel: float = Field(0.5, ge=0, le=1)
    p_gamma_inverted: float = Field(0.1, ge=0, le=1)
    p_gamma: float = Field(0.3, ge=0, le=1)
    gamma_range: tuple[float, float] = (0.7, 1.5)
    # mirroring
    mirror_axes: tuple[int, ...] | None = Field(None, description="spatial axes to mirror; None: all")
    p_mirror_per_axis: float = Field(0.5, ge=0, le=1)

    @field_validator(
        "scale_range",
        "noise_variance",
        "blur_sigma",
        "brightness_range",
        "contrast_range",
        "lowres_zoom",
        "gamma_range",
    )
    @classmethod
    def _ordered_range(cls, v: tuple[float, float]) -> tuple[float, float]:
        if v[0] > v[1] or v[0] < 0:
            raise ValueError(f"must be [low, high] with 0 <= low <= high, got {list(v)}")
        return v

    @classmethod
    def off(cls) -> AugmentationParams:
        """No augmentation at all (the loader crops the final patch directly)."""
        return cls(enabled=False)


def use_dummy_2d(patch_size: Sequence[int]) -> bool:
    """nnU-Net's rule: augment a 3D patch in 2D when ``max(patch) / patch[0] > 3``."""
    return len(patch_size) == 3 and max(patch_size) / patch_size[0] > DUMMY_2D_ASPECT


def initial_patch_size(
    patch_size: Sequence[int], max_angles: Sequence[float], min_scale: float, dummy_2d: bool = False
) -> tuple[int, ...]:
    """The patch to sample so the rotated/scaled final patch stays inside it (nnU-Net's ``get_patch_size``).

    ``max_angles`` are radians per rotation axis (3D: 3, 2D: 1). With dummy 2D the first axis
    is never resampled and keeps its size.
    """
    if dummy_2d:
        inner = initial_patch_size(patch_size[1:], max_angles[:1], min_scale)
        return (int(patch_size[0]), *inner)
    extent = rotated_extent(patch_size, max_angles) / min_scale
    return tuple(int(e) for e in extent)


@dataclass(frozen=True)
class AugmentationPlan:
    """What the loader and the pipeline need, derived from the final patch and the params."""

    patch_size: tuple[int, ...]
    sampled_patch_size: tuple[int, ...]
    dummy_2d: bool
    max_angle: float  # radians
    mirror_axes: tuple[int, ...]


def _default_angle_deg(patch_size: Sequence[int], dummy_2d: bool) -> float:
    if len(patch_size) == 2:
        return 15.0 if max(patch_size) / min(patch_size) > 1.5 else 180.0
    return 180.0 if dummy_2d else 30.0


def plan_augmentation(patch_size: Sequence[int], params: AugmentationParams) -> AugmentationPlan:
    """nnU-Net's rotation / dummy-2D / mirror-axes / initial-patch decisions for ``patch_size``."""
    patch = tuple(int(p) for p in patch_size)
    dims = len(patch)
    axes = tuple(range(dims)) if params.mirror_axes is None else tuple(params.mirror_axes)
    if any(not 0 <= a < dims for a in axes):
        from segforge.errors import ConfigError

        raise ConfigError(
            f"augmentation.mirror_axes {list(axes)} does not fit a {dims}D patch",
            hint=f"use axes from 0 to {dims - 1}, or null for all",
        )
    if not params.enabled:
        return AugmentationPlan(patch, patch, False, 0.0, axes)
    dummy = use_dummy_2d(patch) if params.dummy_2d is None else (params.dummy_2d and dims == 3)
    deg = _default_angle_deg(patch, dummy) if params.rotation_deg is None else params.rotation_deg
    angle = math.radians(deg)
    n_angles = 3 if dims == 3 and not dummy else 1
    sampled = initial_patch_size(patch, [angle] * n_angles, params.initial_patch_min_scale, dummy)
    sampled = tuple(max(s, p) for s, p in zip(sampled, patch, strict=True))
    return AugmentationPlan(patch, sampled, dummy, angle, axes)


class TrainingAugmentation:
    """The per-sample training pipeline: sampled patch in, final patch out (label still with -1).

    ``mask_channels``: channels normalized inside the nonzero mask (``use_mask_for_norm``);
    their voxels where the label is -1 are set to 0 after augmentation, as nnU-Net does.
    """

    def __init__(self, plan: AugmentationPlan, params: AugmentationParams, mask_channels: Sequence[int] = ()):
        self.plan = plan
        self.params = params
        self.mask_channels = tuple(mask_channels)

    def __call__(self, data: np.ndarray, seg: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``data`` float32 [C, *sampled], ``seg`` [1, *sampled] -> both at the final patch size."""
        if not self.params.enabled:
            return data, seg
        data, seg = self._spatial(data, seg, rng)
        data = np.array(data, dtype=np.float32)  # own, writable, contiguous: intensity ops work in place
        data = self._intensity(data, rng)
        data, seg = it.mirror(data, seg, rng, self.plan.mirror_axes, self.params.p_mirror_per_axis)
        if self.mask_channels:
            outside = seg[0] < 0
            for c in self.mask_channels:
                data[c][outside] = 0
        return data, seg

    def _spatial(self, data: np.ndarray, seg: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        patch = self.plan.patch_size
        dims = 2 if self.plan.dummy_2d else len(patch)
        draw: SpatialDraw = draw_spatial(rng, dims, self.plan.max_angle, p.p_rot, p.scale_range, p.p_scale)
        if not self.plan.dummy_2d:
            return apply_spatial(data, seg, patch, draw, p.order_data, p.order_seg)
        # dummy 2D: every slice along axis 0 of every channel is a 2D channel of one transform
        c, x, k = data.shape[0], data.shape[1], seg.shape[0]
        d2, s2 = apply_spatial(
            data.reshape(c * x, *data.shape[2:]),
            seg.reshape(k * x, *seg.shape[2:]),
            patch[1:],
            draw,
            p.order_data,
            p.order_seg,
        )
        return d2.reshape(c, x, *patch[1:]), s2.reshape(k, x, *patch[1:])

    def _intensity(self, data: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        p = self.params
        if rng.random() < p.p_noise:
            it.gaussian_noise(data, rng, p.noise_variance)
        if rng.random() < p.p_blur:
            it.gaussian_blur(data, rng, p.blur_sigma, p.p_blur_per_channel)
        if rng.random() < p.p_brightness:
            it.multiplicative_brightness(data, rng, p.brightness_range)
        if rng.random() < p.p_contrast:
            it.contrast(data, rng, p.contrast_range)
        if rng.random() < p.p_lowres:
            ignore = (0,) if self.plan.dummy_2d else ()
            it.simulate_low_resolution(data, rng, p.lowres_zoom, p.p_lowres_per_channel, ignore)
        if rng.random() < p.p_gamma_inverted:
            it.gamma(data, rng, p.gamma_range, invert=True)
        if rng.random() < p.p_gamma:
            it.gamma(data, rng, p.gamma_range, invert=False)
        return data
