"""The default planner with generic_unet reproduces nnU-Net v2.8.1's plans (measured; see docs/nnunet_parity.md).

The reference numbers come from running nnU-Net v2.8.1's ExperimentPlanner (``nnUNetv2_plan_and_preprocess``
on the hippocampus data and the CT-like dataset, ``ExperimentPlanner.plan_experiment`` on hand-written
fingerprints for the others). Fingerprints are built directly here, so neither nnU-Net nor big data is needed.
"""

from __future__ import annotations

import pytest
from planner_helpers import make_fingerprint

from segforge.planning import plan_experiment

CT_SPACING = [2.5, 0.800000011920929, 0.800000011920929]  # as read from the NIfTI files (float32)

#: nnU-Net v2.8.1: 3d_fullres / 2d decisions. batch sizes capped at 5% of the data match exactly.
NNUNET_V2 = {
    "hippocampus": {
        "fingerprint": ([[1.0, 1.0, 1.0]] * 200, [[36, 50, 35]] * 200),
        "transpose": [0, 1, 2],
        "3d_fullres": dict(spacing=[1, 1, 1], patch=[40, 56, 40], batch=7, strides=[[1, 1, 1]] + [[2, 2, 2]] * 3,
                           features=[32, 64, 128, 256], kernels=[[3, 3, 3]] * 4, batch_dice=False),
        "2d": dict(spacing=[1, 1], patch=[56, 40], batch=281, strides=[[1, 1]] + [[2, 2]] * 3,
                   features=[32, 64, 128, 256], kernels=[[3, 3]] * 4, batch_dice=True),
    },
    "ct_like": {
        "fingerprint": ([CT_SPACING] * 20, [[96, 160, 160]] * 20),
        "channels": ("CT",),
        "transpose": [0, 1, 2],
        "3d_fullres": dict(spacing=CT_SPACING, patch=[96, 160, 128], batch=2,
                           strides=[[1, 1, 1], [1, 2, 2]] + [[2, 2, 2]] * 4,
                           features=[32, 64, 128, 256, 320, 320], kernels=[[1, 3, 3]] + [[3, 3, 3]] * 5,
                           batch_dice=False),
        "2d": dict(spacing=CT_SPACING[1:], patch=[160, 160], batch=96, strides=[[1, 1]] + [[2, 2]] * 5,
                   features=[32, 64, 128, 256, 512, 512], kernels=[[3, 3]] * 6, batch_dice=True),
    },
    "anisotropic": {
        "fingerprint": ([[5.0 + 0.5 * (i % 5), 0.7, 0.7] for i in range(20)], [[20, 256, 256]] * 20),
        "transpose": [0, 1, 2],
        "3d_fullres": dict(spacing=[5.0, 0.7, 0.7], patch=[24, 256, 256], batch=2,
                           strides=[[1, 1, 1], [1, 2, 2], [1, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2], [1, 2, 2]]),
        "2d": dict(spacing=[0.7, 0.7], patch=[256, 256], batch=24),
    },
    "transposed": {
        "fingerprint": ([[0.8, 0.8, 3.0]] * 12, [[200, 200, 60]] * 12),
        "transpose": [2, 0, 1],
        "3d_fullres": dict(spacing=[3.0, 0.8, 0.8], patch=[56, 192, 192], batch=2,
                           strides=[[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2]]),
        "2d": dict(spacing=[0.8, 0.8], patch=[224, 224], batch=29),
    },
}  # fmt: skip

#: nnU-Net v2.8.1 on 10 cases of 400^3 voxels at 1 mm: a 3d_lowres and a cascade (2d batch there: 16)
NNUNET_V2_LARGE = {
    "3d_fullres": dict(spacing=[1.0] * 3, patch=[128, 128, 128], batch=2, median=[400.0] * 3, batch_dice=True),
    "3d_lowres": dict(spacing=[1.973587] * 3, patch=[128, 128, 128], batch=2, median=[203.0] * 3, batch_dice=False),
    "2d": dict(spacing=[1.0, 1.0], patch=[448, 448], median=[400.0, 400.0]),
}


@pytest.mark.parametrize("dataset", list(NNUNET_V2))
def test_default_planner_matches_nnunet_v2(dataset: str):
    ref = NNUNET_V2[dataset]
    fp = make_fingerprint(*ref["fingerprint"], channels=ref.get("channels", ("MRI",)))
    plans = plan_experiment(fp)
    assert plans.transpose_forward == ref["transpose"]
    assert set(plans.configurations) == {"2d", "3d_fullres"}
    for name in ("3d_fullres", "2d"):
        conf, want = plans.configurations[name], ref[name]
        assert conf.spacing == pytest.approx(want["spacing"])
        assert conf.patch_size == want["patch"]
        assert conf.batch_size == want["batch"]
        params = conf.network.params
        if "strides" in want:
            assert params["strides"] == want["strides"]
        assert params["features_per_stage"] == want.get("features", params["features_per_stage"])
        assert params["kernel_sizes"] == want.get("kernels", params["kernel_sizes"])
        assert conf.batch_dice is want.get("batch_dice", conf.batch_dice)
        assert conf.network.name == "generic_unet"


def test_ct_channel_gets_ct_normalization_and_mri_gets_zscore():
    ct = plan_experiment(make_fingerprint(*NNUNET_V2["ct_like"]["fingerprint"], channels=("CT",)))
    mri = plan_experiment(make_fingerprint(*NNUNET_V2["hippocampus"]["fingerprint"]))
    assert ct.configurations["3d_fullres"].normalization == ["ct"]
    assert mri.configurations["2d"].normalization == ["zscore"]
    assert mri.configurations["3d_fullres"].resampling.model_dump() == {
        "order_data": 3, "order_seg": 1, "order_z_data": 0, "order_z_seg": 0,
        "force_separate_z": None, "anisotropy_threshold": 3.0,
    }  # fmt: skip


def test_large_images_get_a_lowres_config_and_a_cascade_like_nnunet():
    fp = make_fingerprint([[1.0, 1.0, 1.0]] * 10, [[400, 400, 400]] * 10, num_labels=2, channels=("CT",))
    plans = plan_experiment(fp)
    assert list(plans.configurations) == ["2d", "3d_fullres", "3d_lowres", "3d_cascade_fullres"]
    for name, want in NNUNET_V2_LARGE.items():
        conf = plans.configurations[name]
        assert conf.spacing == pytest.approx(want["spacing"], abs=1e-6)
        assert conf.patch_size == want["patch"]
        assert conf.median_image_size_in_voxels == want["median"]
        if "batch" in want:
            assert conf.batch_size == want["batch"]
            assert conf.batch_dice is want["batch_dice"]
    lowres, cascade = plans.configurations["3d_lowres"], plans.configurations["3d_cascade_fullres"]
    fullres = plans.configurations["3d_fullres"]
    assert lowres.next_stage == "3d_cascade_fullres" and cascade.previous_stage == "3d_lowres"
    assert cascade.data_identifier == fullres.data_identifier == "segforgePlans_3d_fullres"
    assert lowres.data_identifier == "segforgePlans_3d_lowres"
    assert cascade.patch_size == fullres.patch_size and cascade.network == fullres.network
