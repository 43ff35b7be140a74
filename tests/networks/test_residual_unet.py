"""residual_unet: nnU-Net's ResEnc U-Net."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from segforge.networks.blocks import BasicResidualBlock
from segforge.networks.builder import TopologyRequest
from segforge.networks.generic_unet import GenericUNetBuilder
from segforge.networks.residual_unet import ResidualUNetBuilder, ResidualUNetParams

TINY = {
    "features_per_stage": [4, 8, 16],
    "kernel_sizes": [[3, 3, 3]] * 3,
    "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2]],
}


@pytest.fixture
def builder() -> ResidualUNetBuilder:
    return ResidualUNetBuilder()


def test_default_blocks_are_truncated_to_the_stage_count():
    params = ResidualUNetParams()
    assert params.n_stages == 4
    assert params.n_blocks_per_stage == [1, 3, 4, 6]
    assert params.n_conv_per_stage_decoder == [1, 1, 1]
    assert ResidualUNetParams.model_validate_json(params.model_dump_json()) == params


def test_proposal_shares_generic_unets_topology(builder):
    request = TopologyRequest((96, 160, 128), (2.5, 0.8, 0.8), 1, 3)
    res, plain = builder.propose(request), GenericUNetBuilder().propose(request)
    assert (res.strides, res.kernel_sizes, res.features_per_stage) == (
        plain.strides,
        plain.kernel_sizes,
        plain.features_per_stage,
    )
    assert res.n_blocks_per_stage == [1, 3, 4, 6, 6, 6]
    assert builder.constraints(res) == GenericUNetBuilder().constraints(plain)


def test_nnunet_resenc_parameter_count_for_the_ct_plan(builder):
    params = builder.propose(TopologyRequest((96, 160, 128), (2.5, 0.8, 0.8), 1, 3))
    with torch.device("meta"):
        net = builder.build(params, in_channels=1, num_classes=3)
    # nnU-Net v2 ResidualEncoderUNet with the same arguments (checked against dynamic-network-architectures)
    assert sum(p.numel() for p in net.parameters()) == 102_268_079


def test_structure_stem_blocks_and_projection(builder):
    net = builder.build({**TINY, "n_blocks_per_stage": [1, 2, 2]}, in_channels=2, num_classes=3)
    stem = net.encoder.stem[0]
    assert stem.conv.in_channels == 2 and stem.conv.out_channels == 4 and stem.conv.stride == (1, 1, 1)
    assert [len(stage) for stage in net.encoder.stages] == [1, 2, 2]
    first = net.encoder.stages[1][0]
    assert isinstance(first, BasicResidualBlock) and first.conv1.conv.stride == (2, 2, 2)
    assert isinstance(first.skip[0], nn.AvgPool3d)  # ResNet-D: pool, then 1x1 projection without bias
    assert first.skip[1].conv.kernel_size == (1, 1, 1) and first.skip[1].conv.bias is None
    assert len(net.encoder.stages[0][0].skip) == 0  # same channels, no stride: identity skip
    assert [len(stage) for stage in net.decoder.stages] == [1, 1]


def test_init_zeroes_the_last_norm_of_each_block(builder):
    net = builder.build(TINY, in_channels=1, num_classes=3)
    blocks = [m for m in net.modules() if isinstance(m, BasicResidualBlock)]
    assert blocks and all(float(b.conv2.norm.weight.detach().abs().max()) == 0.0 for b in blocks)
    assert all(float(b.conv1.norm.weight.detach().min()) == 1.0 for b in blocks)


def test_deep_supervision_structure_matches_generic_unet(builder):
    net = builder.build(TINY, in_channels=1, num_classes=3, deep_supervision=True)
    outputs = net(torch.randn(2, 1, 16, 16, 16))
    assert [list(o.shape) for o in outputs] == [[2, 3, 16, 16, 16], [2, 3, 8, 8, 8]]
    assert net.deep_supervision_scales == [[1, 1, 1], [2, 2, 2]]


def test_stem_channels_param(builder):
    net = builder.build({**TINY, "stem_channels": 6}, in_channels=1, num_classes=3)
    assert net.encoder.stem[0].conv.out_channels == 6
    assert net.encoder.stages[0][0].conv1.conv.in_channels == 6
