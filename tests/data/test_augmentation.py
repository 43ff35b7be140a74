"""Augmentation: nnU-Net's decisions, JSON-able params, and parity with batchgenerators' functions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError
from scipy.ndimage import gaussian_filter

from segforge.data import intensity_transforms as it
from segforge.data.augmentation import (
    AugmentationParams,
    TrainingAugmentation,
    initial_patch_size,
    plan_augmentation,
    use_dummy_2d,
)
from segforge.data.spatial_transform import SpatialDraw, apply_spatial, interpolate_labels_linear, sample_coordinates
from segforge.errors import ConfigError


def _labels(shape, rng, sigma=2.0) -> np.ndarray:
    """Blobby labels -1..2 (smooth noise cut at quantiles), like a real label map with a -1 shell."""
    field = gaussian_filter(rng.normal(size=shape), sigma)
    return (np.digitize(field, np.quantile(field, [0.2, 0.5, 0.8])) - 1).astype(np.int16)


# -- decisions -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("patch", "dummy"),
    [((20, 192, 160), True), ((40, 56, 40), False), ((16, 48, 48), False), ((15, 48, 48), True), ((56, 40), False)],
)
def test_dummy_2d_rule(patch, dummy):
    assert use_dummy_2d(patch) is dummy


@pytest.mark.parametrize(
    ("patch", "degrees", "dummy", "expected"),  # expected: nnU-Net v2's get_patch_size, computed with nnunetv2 2.8.1
    [((40, 56, 40), 30, False, (73, 80, 64)), ((56, 40), 180, False, (65, 65)),
     ((512, 256), 15, False, (659, 301)), ((20, 192, 160), 180, True, (20, 225, 225))],
)  # fmt: skip
def test_initial_patch_size_matches_nnunet(patch, degrees, dummy, expected):
    n = 1 if dummy or len(patch) == 2 else 3
    assert initial_patch_size(patch, [math.radians(degrees)] * n, 0.85, dummy) == expected


def test_plan_follows_nnunet_defaults():
    plan = plan_augmentation((40, 56, 40), AugmentationParams())
    assert plan.sampled_patch_size == (73, 80, 64) and not plan.dummy_2d
    assert plan.max_angle == pytest.approx(math.radians(30)) and plan.mirror_axes == (0, 1, 2)
    aniso = plan_augmentation((20, 192, 160), AugmentationParams())
    assert aniso.dummy_2d and aniso.max_angle == pytest.approx(math.pi) and aniso.sampled_patch_size[0] == 20
    assert plan_augmentation((512, 256), AugmentationParams()).max_angle == pytest.approx(math.radians(15))
    assert plan_augmentation((256, 256), AugmentationParams()).max_angle == pytest.approx(math.pi)
    off = plan_augmentation((40, 56, 40), AugmentationParams.off())
    assert off.sampled_patch_size == (40, 56, 40)
    forced = plan_augmentation((40, 56, 40), AugmentationParams(dummy_2d=True, rotation_deg=10, mirror_axes=(1, 2)))
    assert forced.dummy_2d and forced.max_angle == pytest.approx(math.radians(10)) and forced.mirror_axes == (1, 2)


def test_params_are_json_and_validated():
    params = AugmentationParams(p_rot=0.1, scale_range=(0.8, 1.2))
    again = AugmentationParams.model_validate_json(params.model_dump_json())
    assert again == params and again.scale_range == (0.8, 1.2)
    assert AugmentationParams.model_validate({"p_gamma": 0}).p_gamma == 0
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        AugmentationParams(p_rot=1.5)
    with pytest.raises(ValidationError, match=r"0 <= low <= high, got \[1.4, 0.7\]"):
        AugmentationParams(scale_range=(1.4, 0.7))
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        AugmentationParams(p_rotation=0.1)
    with pytest.raises(ConfigError, match=r"mirror_axes \[0, 3\] does not fit a 3D patch"):
        plan_augmentation((8, 8, 8), AugmentationParams(mirror_axes=(0, 3)))


# -- parity with batchgenerators -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("angles", "scale", "order"), [((0.3, -0.2, 0.4), 1.2, 3), ((0.5, 0.1, -0.5), None, 1), (None, 1.35, 3)]
)
def test_spatial_matches_batchgenerators_augment_spatial(angles, scale, order):
    from batchgenerators.augmentations.spatial_transformations import augment_spatial

    rng = np.random.default_rng(0)
    data = rng.normal(size=(2, 30, 34, 28)).astype(np.float32)
    seg = _labels((30, 34, 28), rng)[None]
    a = angles or (0.0, 0.0, 0.0)
    s = scale or 1.0
    ref_data, ref_seg = augment_spatial(
        data[None], seg[None].astype(np.float32), (20, 24, 18), patch_center_dist_from_border=None,
        do_elastic_deform=False, angle_x=(a[0], a[0]), angle_y=(a[1], a[1]), angle_z=(a[2], a[2]),
        scale=(s, s), border_mode_data="constant", border_cval_data=0, order_data=order, border_mode_seg="constant",
        border_cval_seg=-1, order_seg=1, random_crop=False, p_el_per_sample=0, p_scale_per_sample=1,
        p_rot_per_sample=1,
    )  # fmt: skip
    out_data, out_seg = apply_spatial(data, seg, (20, 24, 18), SpatialDraw(angles, scale), order_data=order)
    np.testing.assert_allclose(out_data, ref_data[0], atol=2e-6)  # float32 spline prefilter
    np.testing.assert_array_equal(out_seg, ref_seg[0])


def test_label_interpolation_identical_to_batchgenerators_2d_and_3d():
    from batchgenerators.augmentations.utils import interpolate_img

    rng = np.random.default_rng(1)
    for shape, patch, angles in [((36, 40, 30), (30, 30, 24), (0.4, -0.3, 0.2)), ((50, 44), (40, 36), (2.0,))]:
        seg = _labels(shape, rng, sigma=1.5)
        coords = sample_coordinates(SpatialDraw(angles, 1.3), shape, patch)
        expected = interpolate_img(seg, coords, 1, "constant", cval=-1, is_seg=True)
        np.testing.assert_array_equal(interpolate_labels_linear(seg, coords, -1), expected)


def test_identity_draw_is_a_centre_crop():
    data = np.arange(2 * 9 * 8 * 7, dtype=np.float32).reshape(2, 9, 8, 7)
    seg = np.zeros((1, 9, 8, 7), np.int16)
    out, _ = apply_spatial(data, seg, (4, 4, 4), SpatialDraw())
    np.testing.assert_array_equal(out, data[:, 2:6, 2:6, 1:5])


def test_intensity_transforms_match_batchgenerators():
    from batchgenerators.augmentations import color_augmentations as ca
    from batchgenerators.augmentations import noise_augmentations as na
    from batchgenerators.augmentations import resample_augmentations as ra

    x = np.random.default_rng(0).normal(size=(2, 20, 24, 18)).astype(np.float32)
    g = np.random.default_rng(1)  # fixed ranges: batchgenerators' draws are then deterministic too
    pairs = [
        (it.contrast(x.copy(), g, (1.2, 1.2)), ca.augment_contrast(x.copy(), (1.2, 1.2), True, True)),
        (it.gamma(x.copy(), g, (1.3, 1.3), False), ca.augment_gamma(x.copy(), (1.3, 1.3), False, per_channel=True,
                                                                    retain_stats=True)),
        (it.gamma(x.copy(), g, (1.3, 1.3), True), ca.augment_gamma(x.copy(), (1.3, 1.3), True, per_channel=True,
                                                                   retain_stats=True)),
        (it.multiplicative_brightness(x.copy(), g, (1.1, 1.1)), ca.augment_brightness_multiplicative(x.copy(),
                                                                                                      (1.1, 1.1))),
        (it.gaussian_blur(x.copy(), g, (0.7, 0.7), 1.0), na.augment_gaussian_blur(x.copy(), (0.7, 0.7), True, 1.0)),
    ]  # fmt: skip
    for zoom in (0.5, 0.63):
        for ignore in ((), (0,)):
            pairs.append((
                it.simulate_low_resolution(x.copy(), g, (zoom, zoom), 1.0, ignore),
                ra.augment_linear_downsampling_scipy(x.copy(), (zoom, zoom), True, 1.0, order_downsample=0,
                                                     order_upsample=3, ignore_axes=ignore or None),
            ))  # fmt: skip
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours, theirs, atol=1e-5)
    noisy = it.gaussian_noise(x.copy(), g, (0.1, 0.1))
    assert (noisy - x).std() == pytest.approx(0.1, rel=0.05)  # batchgenerators' "variance" is the std


def test_draws_below_and_above_one_with_equal_odds():
    g = np.random.default_rng(0)
    x = np.random.default_rng(1).normal(size=(400, 50)).astype(np.float32)
    factors = [(it.contrast(x[i : i + 1].copy(), g, (0.75, 1.25))).std() / x[i].std() for i in range(400)]
    below = np.mean(np.array(factors) < 1)
    assert 0.4 < below < 0.6


# -- the pipeline --------------------------------------------------------------------------------
def test_mirror_flips_image_and_label_together():
    data = np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4)
    seg = np.arange(24, dtype=np.int16).reshape(1, 2, 3, 4)
    d, s = it.mirror(data, seg, np.random.default_rng(0), (0, 2), p_per_axis=1)
    np.testing.assert_array_equal(d, data[:, ::-1, :, ::-1])
    np.testing.assert_array_equal(s, seg[:, ::-1, :, ::-1])
    d, s = it.mirror(data, seg, np.random.default_rng(0), (0, 1, 2), p_per_axis=0)
    assert d is data and s is seg


def test_disabled_pipeline_is_identity():
    plan = plan_augmentation((8, 8, 8), AugmentationParams.off())
    data = np.random.default_rng(0).normal(size=(1, 8, 8, 8)).astype(np.float32)
    seg = np.zeros((1, 8, 8, 8), np.int16)
    out, out_seg = TrainingAugmentation(plan, AugmentationParams.off())(data, seg, np.random.default_rng(0))
    assert out is data and out_seg is seg


def test_dummy_2d_never_mixes_slices_along_axis_0():
    params = AugmentationParams(p_rot=1, p_scale=1, p_noise=0, p_blur=0, p_brightness=0, p_contrast=0, p_lowres=0,
                                p_gamma=0, p_gamma_inverted=0, p_mirror_per_axis=0)  # fmt: skip
    plan = plan_augmentation((4, 24, 20), params)
    assert plan.dummy_2d and plan.sampled_patch_size[0] == 4
    sampled = plan.sampled_patch_size
    data = np.broadcast_to(np.arange(1, 5, dtype=np.float32)[:, None, None], sampled)[None].copy()
    seg = np.zeros((1, *sampled), np.int16)
    out, out_seg = TrainingAugmentation(plan, params)(data, seg, np.random.default_rng(0))
    assert out.shape == (1, 4, 24, 20) and out_seg.shape == (1, 4, 24, 20)
    for k in range(4):  # each slice stays its own constant inside (mixing slices would give e.g. 1.5)
        assert out[0, k, 12, 10] == pytest.approx(k + 1, abs=1e-4)
        assert out[0, k].max() < (k + 1) * 1.15 and out[0, k].min() > -(k + 1) * 0.15  # spline overshoot only


def test_mask_channels_are_zeroed_outside_the_nonzero_region():
    params = AugmentationParams(p_rot=0, p_scale=0, p_noise=0, p_blur=0, p_brightness=0, p_contrast=0, p_lowres=0,
                                p_gamma=0, p_gamma_inverted=0, p_mirror_per_axis=0)  # fmt: skip
    plan = plan_augmentation((6, 6, 6), params)
    data = np.ones((2, *plan.sampled_patch_size), np.float32)
    seg = np.zeros((1, *plan.sampled_patch_size), np.int16)
    seg[0, :3] = -1
    out, _ = TrainingAugmentation(plan, params, mask_channels=[1])(data, seg, np.random.default_rng(0))
    assert (out[0] == 1).all()
    c = [(s - 6) // 2 for s in plan.sampled_patch_size]
    outside = seg[0, c[0] : c[0] + 6, c[1] : c[1] + 6, c[2] : c[2] + 6] < 0
    assert (out[1][outside] == 0).all() and (out[1][~outside] == 1).all()


def test_pipeline_uses_only_its_generator():
    params = AugmentationParams(p_rot=1, p_scale=1, p_noise=1, p_blur=1, p_brightness=1, p_contrast=1, p_lowres=1,
                                p_gamma=1, p_gamma_inverted=1)  # fmt: skip
    plan = plan_augmentation((12, 12, 12), params)
    rng = np.random.default_rng(0)
    data = rng.normal(size=(1, *plan.sampled_patch_size)).astype(np.float32)
    seg = _labels(plan.sampled_patch_size, rng)[None]
    np.random.seed(7)
    state = np.random.get_state()[1].copy()
    a = TrainingAugmentation(plan, params)(data.copy(), seg, np.random.default_rng(3))
    b = TrainingAugmentation(plan, params)(data.copy(), seg, np.random.default_rng(3))
    np.testing.assert_array_equal(np.random.get_state()[1], state)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[0].shape == (1, 12, 12, 12) and a[0].dtype == np.float32


@pytest.mark.parametrize(
    ("shape", "out"), [((20, 28, 20), (40, 56, 40)), ((7, 9, 11), (40, 56, 40)), ((40, 30), (41, 60)), ((9, 5), (9, 5))]
)
def test_separable_cubic_zoom_equals_scipy(shape, out):
    from scipy.ndimage import zoom

    x = np.random.default_rng(0).normal(size=shape)
    expected = zoom(x, np.array(out) / np.array(shape), order=3, mode="nearest", grid_mode=True)
    np.testing.assert_allclose(it.cubic_zoom_edge(x, out), expected, atol=1e-6)
