"""Which patches swin_unet accepts, and the topology it proposes for a patch and spacing."""

from __future__ import annotations

import pytest
from segforge_swinunet.builder import SwinUNetBuilder, best_window, embedding_strides, stage_count

from segforge.errors import ConfigError
from segforge.networks.builder import TopologyRequest

BUILDER = SwinUNetBuilder()
HIPPOCAMPUS_PATCH = (40, 56, 40)  # nnU-Net's 3d_fullres patch for Task004


def test_default_params_reject_nnunets_hippocampus_patch():
    c = BUILDER.constraints(BUILDER.Params())
    assert c.divisors == (64, 64, 64)  # patch 2 * 2^(4 stages - 1) * window 4
    assert c.min_edge == (64, 64, 64)
    assert not c.accepts(HIPPOCAMPUS_PATCH)
    assert "axis 1: 56 is not a multiple of 64" in c.problems(HIPPOCAMPUS_PATCH)


def test_rounded_hippocampus_patches_are_accepted_and_build():
    params = BUILDER.parse_params({"depths": [2, 2, 2], "num_heads": [3, 6, 12]})  # divisor 2 * 4 * 4 = 32
    c = BUILDER.constraints(params)
    up, down = c.round_up(HIPPOCAMPUS_PATCH), c.round_down(HIPPOCAMPUS_PATCH)
    assert (up, down) == ((64, 64, 64), (32, 32, 32))
    assert c.accepts(up) and c.accepts(down)
    assert not c.accepts((32, 48, 32))  # 48 is not a multiple of 32


def test_divisor_follows_patch_window_and_depth_per_axis():
    params = BUILDER.parse_params(
        {"depths": [2, 2], "num_heads": [3, 6], "window_size": [3, 5, 7], "patch_size": [1, 2, 2]}
    )
    assert BUILDER.constraints(params).divisors == (1 * 2 * 3, 2 * 2 * 5, 2 * 2 * 7)


def test_proposal_for_the_hippocampus_patch_fits_it_exactly():
    params = BUILDER.propose(TopologyRequest(HIPPOCAMPUS_PATCH, (1.0, 1.0, 1.0), 1, 3))
    assert (params.depths, params.num_heads) == ([2, 2, 2], [3, 6, 12])
    assert (params.window_size, params.patch_size) == ([5, 7, 5], [2, 2, 2])
    assert BUILDER.constraints(params).accepts(HIPPOCAMPUS_PATCH)


def test_anisotropic_spacing_embeds_the_coarse_axis_with_stride_one():
    params = BUILDER.propose(TopologyRequest((20, 320, 256), (3.6, 0.6, 0.6), 1, 3))
    assert params.patch_size == [1, 2, 2]
    assert params.depths == [2, 2, 2]  # a 4th stage would leave 20 / 8 = 2.5 slices at the bottom
    assert params.window_size == [5, 5, 4]
    assert BUILDER.constraints(params).round_up((20, 320, 256)) == (20, 320, 256)


def test_spacing_just_under_twice_the_finest_still_embeds_with_stride_two():
    assert embedding_strides((1.9, 1.0, 1.0)) == [2, 2, 2]
    assert embedding_strides((2.0, 1.0, 1.0)) == [1, 2, 2]
    assert embedding_strides((0.7, 0.7)) == [2, 2]


def test_2d_proposal_and_large_patch_use_four_stages_when_they_fit():
    params = BUILDER.propose(TopologyRequest((128, 128, 128), (1.0, 1.0, 1.0), 1, 3))
    assert (len(params.depths), params.window_size) == (4, [4, 4, 4])
    params_2d = BUILDER.propose(TopologyRequest((56, 40), (1.0, 1.0), 1, 3))
    assert (params_2d.dims, params_2d.window_size, BUILDER.constraints(params_2d).divisors) == (2, [7, 5], (56, 40))


def test_stage_count_and_window_choice():
    assert stage_count((16, 16, 16), (2, 2, 2)) == 2  # 8 / 2 = 4 tokens at the bottom; 3 stages would leave 2
    assert stage_count((8, 8, 8), (2, 2, 2)) == 2  # never fewer than 2 stages
    assert best_window(36, 8) == 5  # 40 pads least
    assert best_window(192, 16) == 6  # 4 and 6 both fit exactly: the larger window wins


def test_proposal_rejects_a_mismatched_spacing():
    with pytest.raises(ConfigError, match="cannot propose for patch \\[32, 32\\] with spacing \\[1.0, 1.0, 1.0\\]"):
        BUILDER.propose(TopologyRequest((32, 32), (1.0, 1.0, 1.0), 1, 3))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"num_heads": [3, 6, 12]}, "num_heads: Value error, needs one entry per stage (4, as depths)"),
        ({"embed_dim": 20}, "stage 0 has 20 channels (embed_dim * 2^0), which 3 heads do not divide evenly"),
        ({"window_size": [4, 4]}, "window_size: Value error, needs one entry per axis (3 for dims=3)"),
        ({"patch_size": 0}, "patch_size: Value error, entries must be >= 1"),
        ({"depths": [2]}, "depths: List should have at least 2 items"),
        ({"dims": 2, "windw_size": 7}, "windw_size: Extra inputs are not permitted"),
    ],
)
def test_invalid_params_name_the_field(params, message):
    with pytest.raises(ConfigError) as excinfo:
        BUILDER.parse_params(params)
    assert message in excinfo.value.message
    assert "segforge components show network swin_unet" in excinfo.value.hint


def test_per_axis_ints_and_dims_defaults_roundtrip_as_lists():
    params = BUILDER.parse_params({"dims": 2})
    assert (params.window_size, params.patch_size) == ([7, 7], [2, 2])
    again = BUILDER.Params.model_validate_json(params.model_dump_json())
    assert again == params
