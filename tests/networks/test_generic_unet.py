"""generic_unet: nnU-Net's PlainConvUNet topology, params, init and deep supervision."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError
from torch import nn

import segforge
from segforge.errors import ConfigError
from segforge.networks.builder import TopologyRequest
from segforge.networks.generic_unet import GenericUNetBuilder, GenericUNetParams

TINY = {
    "features_per_stage": [4, 8, 16],
    "kernel_sizes": [[1, 3, 3], [3, 3, 3], [3, 3, 3]],
    "strides": [[1, 1, 1], [1, 2, 2], [2, 2, 2]],
}


@pytest.fixture
def builder() -> GenericUNetBuilder:
    return GenericUNetBuilder()


def test_hippocampus_topology_matches_nnunet_v2(builder):
    params, patch = builder.propose_with_patch(TopologyRequest((40, 56, 40), (1.0, 1.0, 1.0), 1, 3))
    assert params.strides == [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2]]
    assert params.kernel_sizes == [[3, 3, 3]] * 4
    assert params.features_per_stage == [32, 64, 128, 256]
    assert params.n_conv_per_stage == [2] * 4 and params.n_conv_per_stage_decoder == [2] * 3
    assert patch == (40, 56, 40)


def test_anisotropic_ct_topology_matches_nnunet_v2(builder):
    params = builder.propose(TopologyRequest((96, 160, 128), (2.5, 0.8, 0.8), 1, 3))
    assert params.strides == [[1, 1, 1], [1, 2, 2]] + [[2, 2, 2]] * 4
    assert params.kernel_sizes == [[1, 3, 3]] + [[3, 3, 3]] * 5
    assert params.features_per_stage == [32, 64, 128, 256, 320, 320]


def test_2d_features_are_capped_at_512(builder):
    params = builder.propose(TopologyRequest((512, 512), (1.0, 1.0), 1, 2))
    assert params.features_per_stage == [32, 64, 128, 256, 512, 512, 512, 512]
    assert params.dims == 2


def test_proposed_patch_is_the_constraints_round_up(builder):
    request = TopologyRequest((41, 57, 30), (1.0, 1.0, 1.0), 1, 3)
    params, patch = builder.propose_with_patch(request)
    constraints = builder.constraints(params)
    assert patch == constraints.round_up(request.patch_size) == (48, 64, 32)
    assert constraints.accepts(patch)


def test_too_small_patch_for_any_downsampling_is_a_config_error(builder):
    with pytest.raises(ConfigError, match=r"patch \[6, 6, 6\] is too small for a U-Net"):
        builder.propose(TopologyRequest((6, 6, 6), (1.0, 1.0, 1.0), 1, 3))


def test_constraints_divisor_and_minimum_edge(builder):
    c = builder.constraints(builder.parse_params(TINY))
    assert c.divisors == (2, 4, 4)
    assert c.min_edge == (4, 8, 8)
    assert c.deep_supervision is True
    assert c.accepts((4, 8, 8)) and not c.accepts((2, 4, 4)) and not c.accepts((4, 9, 8))
    assert c.round_down((5, 13, 17)) == (4, 12, 16)


def test_default_params_are_a_valid_small_3d_net(builder):
    params = GenericUNetParams()
    assert params.dims == 3 and params.n_stages == 4
    assert builder.constraints(params).divisors == (8, 8, 8)


def test_nnunet_default_3d_fullres_net_has_31_1_million_parameters(builder):
    params = builder.propose(TopologyRequest((96, 160, 128), (2.5, 0.8, 0.8), 1, 3))
    with torch.device("meta"):
        net = builder.build(params, in_channels=1, num_classes=3)
    count = sum(p.numel() for p in net.parameters())
    assert abs(count - 31.1e6) / 31.1e6 < 0.01
    assert count == 31_113_903  # nnU-Net v2 PlainConvUNet with the same arguments (conv bias, all DS heads)


def test_layers_follow_nnunet_defaults(builder):
    net = builder.build(TINY, in_channels=2, num_classes=3)
    first = net.encoder.stages[0][0]
    assert isinstance(first.conv, nn.Conv3d) and first.conv.kernel_size == (1, 3, 3) and first.conv.in_channels == 2
    assert isinstance(first.norm, nn.InstanceNorm3d) and first.norm.eps == 1e-5 and first.norm.affine
    assert isinstance(first.nonlin, nn.LeakyReLU) and first.nonlin.negative_slope == 0.01
    down = net.encoder.stages[1][0].conv
    assert down.stride == (1, 2, 2)  # downsampling by strided conv, no pooling layers
    assert not any(isinstance(m, (nn.MaxPool3d, nn.AvgPool3d)) for m in net.modules())
    up = net.decoder.transpconvs[0]
    assert isinstance(up, nn.ConvTranspose3d) and up.kernel_size == up.stride == (2, 2, 2)
    assert all(h.kernel_size == (1, 1, 1) and h.out_channels == 3 for h in net.decoder.seg_layers)


def test_he_init_kaiming_normal_with_zero_bias(builder):
    torch.manual_seed(0)
    params = builder.parse_params({**TINY, "features_per_stage": [16, 32, 64]})
    net = builder.build(params, in_channels=1, num_classes=3)
    conv = net.encoder.stages[2][1].conv  # 64 -> 64, 3x3x3
    fan_in = conv.in_channels * math.prod(conv.kernel_size)
    expected_std = math.sqrt(2.0 / (1 + 0.01**2)) / math.sqrt(fan_in)
    assert conv.weight.std().item() == pytest.approx(expected_std, rel=0.05)
    assert conv.weight.mean().abs().item() < 0.1 * expected_std
    assert all(float(m.bias.detach().abs().max()) == 0.0 for m in net.modules() if isinstance(m, nn.Conv3d))


def test_deep_supervision_outputs_match_nnunet_v2(builder):
    net = builder.build(TINY, in_channels=1, num_classes=3, deep_supervision=True)
    outputs = net(torch.randn(2, 1, 8, 16, 16))
    # n_stages - 1 = 2 decoder levels, highest resolution first
    assert [list(o.shape) for o in outputs] == [[2, 3, 8, 16, 16], [2, 3, 8, 8, 8]]
    assert net.deep_supervision_scales == [[1, 1, 1], [1, 2, 2]]


def test_switching_deep_supervision_off_returns_the_full_resolution_head(builder):
    torch.manual_seed(0)
    net = builder.build(TINY, in_channels=1, num_classes=3, deep_supervision=True).eval()
    x = torch.randn(1, 1, 8, 16, 16)
    with torch.no_grad():
        full = net(x)[0]
        net.deep_supervision = False
        single = net(x)
    assert torch.equal(full, single)
    assert net.deep_supervision_scales == [[1, 1, 1]]


def test_input_off_the_divisor_is_a_config_error(builder):
    net = builder.build(TINY, in_channels=1, num_classes=3)
    with pytest.raises(ConfigError, match=r"spatial shape \[8, 18, 16\] is not a multiple of \[2, 4, 4\]"):
        net(torch.randn(1, 1, 8, 18, 16))


def test_2d_network_from_params(builder):
    params = {"features_per_stage": [4, 8], "kernel_sizes": [[3, 3], [3, 3]], "strides": [[1, 1], [2, 2]]}
    net = builder.build(params, in_channels=2, num_classes=4, deep_supervision=False)
    assert list(net(torch.randn(1, 2, 8, 8)).shape) == [1, 4, 8, 8]


def test_build_network_through_the_registry():
    net = segforge.build_network("generic_unet", TINY, in_channels=1, num_classes=3, deep_supervision=False)
    assert list(net(torch.randn(1, 1, 4, 8, 8)).shape) == [1, 3, 4, 8, 8]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"strides": [[1, 1, 1], [2, 2, 2]]}, "strides has 2 stages, features_per_stage has 3"),
        ({"kernel_sizes": [[3, 3], [3, 3, 3], [3, 3, 3]]}, "same number of axes"),
        ({"kernel_sizes": [[2, 3, 3], [3, 3, 3], [3, 3, 3]]}, "odd"),
        ({"n_conv_per_stage": [2, 2]}, "needs 3 entries"),
        ({"norm": "layer"}, "norm"),
        ({"nonlin_kwargs": {"slope": 0.1}}, "does not accept slope"),
        ({"depth": 3}, "depth"),
    ],
)
def test_invalid_params_are_one_line_config_errors(builder, change, message):
    with pytest.raises(ConfigError, match=message) as info:
        builder.parse_params({**TINY, **change})
    assert "network 'generic_unet' params" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ValidationError):
        GenericUNetParams(**{**TINY, **change})


def test_per_stage_counts_expand_and_round_trip(builder):
    params = builder.parse_params({**TINY, "n_conv_per_stage": 3, "n_conv_per_stage_decoder": [1, 1, 1, 1]})
    assert params.n_conv_per_stage == [3, 3, 3] and params.n_conv_per_stage_decoder == [1, 1]
    assert GenericUNetParams.model_validate_json(params.model_dump_json()) == params
