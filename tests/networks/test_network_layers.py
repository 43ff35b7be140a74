"""Layers resolved from string specs."""

from __future__ import annotations

import pytest
from torch import nn

from segforge.errors import ConfigError
from segforge.networks.layers import LayerSpec, check_layer_kwargs


def test_defaults_are_nnunets_instance_norm_and_leaky_relu():
    spec = LayerSpec(dims=3)
    norm, act = spec.norm_layer(8), spec.nonlin_layer()
    assert isinstance(norm, nn.InstanceNorm3d) and norm.eps == 1e-5 and norm.affine
    assert isinstance(act, nn.LeakyReLU) and act.negative_slope == 0.01 and act.inplace
    assert spec.dropout_layer() is None


@pytest.mark.parametrize(
    ("dims", "norm", "cls"),
    [(2, "instance", nn.InstanceNorm2d), (2, "batch", nn.BatchNorm2d), (3, "batch", nn.BatchNorm3d)],
)
def test_norm_class_follows_name_and_dims(dims, norm, cls):
    assert type(LayerSpec(dims=dims, norm=norm).norm_layer(4)) is cls


def test_group_norm_falls_back_to_a_divisor_of_the_channels():
    norm = LayerSpec(dims=3, norm="group", norm_kwargs={"num_groups": 8}).norm_layer(12)
    assert isinstance(norm, nn.GroupNorm) and norm.num_groups == 4


def test_conv_is_same_padded_and_transposed_conv_inverts_the_stride():
    spec = LayerSpec(dims=3)
    conv = spec.conv(2, 4, [1, 3, 3], [1, 2, 2])
    assert conv.padding == (0, 1, 1) and conv.stride == (1, 2, 2)
    up = spec.transposed_conv(4, 2, [1, 2, 2])
    assert up.kernel_size == (1, 2, 2) and up.stride == (1, 2, 2)


def test_dropout_is_channel_dropout():
    drop = LayerSpec(dims=2, dropout=0.2).dropout_layer()
    assert isinstance(drop, nn.Dropout2d) and drop.p == 0.2


def test_unknown_kwargs_name_the_layer_and_the_accepted_ones():
    with pytest.raises(ValueError, match="norm 'instance' does not accept num_groups"):
        check_layer_kwargs("norm", "instance", {"num_groups": 2})
    with pytest.raises(ConfigError, match="network nonlin: nonlin 'relu' does not accept negative_slope"):
        LayerSpec(dims=3, nonlin="relu", nonlin_kwargs={"negative_slope": 0.1})


def test_bad_dims_is_a_config_error():
    with pytest.raises(ConfigError, match="dims must be 2 or 3"):
        LayerSpec(dims=4)


def test_layer_classes_resolve_from_names_and_dims():
    from segforge.networks.layers import conv_op, dropout_op, nonlin_op, norm_op, transposed_conv_op

    assert conv_op(2) is nn.Conv2d and conv_op(3) is nn.Conv3d
    assert transposed_conv_op(3) is nn.ConvTranspose3d
    assert norm_op("instance", 2) is nn.InstanceNorm2d and norm_op("group", 3) is nn.GroupNorm
    assert nonlin_op("gelu") is nn.GELU and dropout_op(3) is nn.Dropout3d
