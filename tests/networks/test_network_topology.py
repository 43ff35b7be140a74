"""nnU-Net v2's topology rules (get_pool_and_conv_props) as reimplemented in segforge.networks.topology."""

from __future__ import annotations

import pytest

from segforge.errors import ConfigError
from segforge.networks.topology import cumulative_divisors, features_per_stage, pool_and_conv_props


def test_hippocampus_isotropic_patch_gives_four_stages():
    topo = pool_and_conv_props((1.0, 1.0, 1.0), (40, 56, 40))
    assert topo.strides == ((1, 1, 1), (2, 2, 2), (2, 2, 2), (2, 2, 2))
    assert topo.kernel_sizes == ((3, 3, 3),) * 4
    assert topo.patch_size == (40, 56, 40)
    assert topo.divisors == (8, 8, 8)


def test_anisotropic_ct_patch_gives_six_stages_with_in_plane_first():
    topo = pool_and_conv_props((2.5, 0.8, 0.8), (96, 160, 128))
    assert topo.strides == ((1, 1, 1), (1, 2, 2)) + ((2, 2, 2),) * 4
    assert topo.kernel_sizes == ((1, 3, 3),) + ((3, 3, 3),) * 5
    assert topo.patch_size == (96, 160, 128)
    assert topo.divisors == (16, 32, 32)


def test_patch_is_padded_up_to_the_divisor():
    # 41 -> 3 pools (41, 21, 11 >= 8; 6 < 8) -> padded to 48, as nnU-Net's pad_shape does
    topo = pool_and_conv_props((1.0, 1.0, 1.0), (41, 56, 40))
    assert topo.divisors == (8, 8, 8)
    assert topo.patch_size == (48, 56, 40)


def test_single_poolable_axis_needs_three_times_min_feature_map():
    # only axis 1 may pool (axis 0 is small); it needs an edge >= 12 to be pooled alone
    assert pool_and_conv_props((1.0, 1.0), (4, 11)).strides == ((1, 1),)
    assert pool_and_conv_props((1.0, 1.0), (4, 12)).strides == ((1, 1), (1, 2))


def test_2d_large_patch_is_not_capped_at_five_pools_like_nnunet_v2():
    topo = pool_and_conv_props((1.0, 1.0), (512, 512))
    assert len(topo.strides) == 8  # 512 -> 4 takes 7 pools
    capped = pool_and_conv_props((1.0, 1.0), (512, 512), max_pools_per_axis=5)
    assert len(capped.strides) == 6


def test_features_double_up_to_the_cap():
    assert features_per_stage(6, 32, 320) == [32, 64, 128, 256, 320, 320]
    assert features_per_stage(8, 32, 512) == [32, 64, 128, 256, 512, 512, 512, 512]


def test_cumulative_divisors_multiply_per_axis():
    assert cumulative_divisors([[1, 1, 1], [1, 2, 2], [2, 2, 2]]) == (2, 4, 4)


@pytest.mark.parametrize(
    ("spacing", "patch", "message"),
    [((1.0, 1.0), (16, 16, 16), "must both have 2 or 3 axes"), ((0.0, 1.0), (16, 16), "must be positive")],
)
def test_bad_requests_are_config_errors(spacing, patch, message):
    with pytest.raises(ConfigError, match=message):
        pool_and_conv_props(spacing, patch)
