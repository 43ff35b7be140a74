"""nnU-Net's networks as segforge's builtins: same logits as dynamic_network_architectures for the same weights.

The live comparison needs dynamic_network_architectures (installed with nnunetv2; run these tests
with the nnU-Net venv's python, see docs/nnunet-models.md); the stored fixture's weights are
checked against segforge's module names without it.
"""

from __future__ import annotations

import copy
import pydoc
from typing import Any

import pytest
import torch
from segforge_nnunet_fixture import PLAIN, RESENC

from segforge.errors import ConfigError
from segforge.interop.nnunet.architecture import convert_state_dict, network_spec
from segforge.interop.nnunet.checkpoint import load_nnunet_checkpoint
from segforge.interop.nnunet.plans import read_json
from segforge.plugins import get_registries

PLAIN_3D = {
    "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
    "arch_kwargs": {
        "n_stages": 4,
        "features_per_stage": [4, 8, 16, 32],
        "conv_op": "torch.nn.modules.conv.Conv3d",
        "kernel_sizes": [[1, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]],
        "strides": [[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 2]],
        "n_conv_per_stage": [2, 2, 2, 2],
        "n_conv_per_stage_decoder": [2, 2, 2],
        "conv_bias": True,
        "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
        "norm_op_kwargs": {"eps": 1e-05, "affine": True},
        "dropout_op": None,
        "dropout_op_kwargs": None,
        "nonlin": "torch.nn.LeakyReLU",
        "nonlin_kwargs": {"inplace": True},
    },
    "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
}


def _variant(base: dict[str, Any], cls: str | None = None, **kwargs: Any) -> dict[str, Any]:
    arch = copy.deepcopy(base)
    if cls:
        arch["network_class_name"] = f"dynamic_network_architectures.architectures.unet.{cls}"
    arch["arch_kwargs"].update(kwargs)
    return arch


RESENC_3D = _variant(
    PLAIN_3D, "ResidualEncoderUNet", n_blocks_per_stage=[1, 3, 4, 6], n_conv_per_stage_decoder=[1, 1, 1]
)
del RESENC_3D["arch_kwargs"]["n_conv_per_stage"]
PLAIN_2D = _variant(
    PLAIN_3D,
    conv_op="torch.nn.modules.conv.Conv2d",
    kernel_sizes=[[3, 3]] * 4,
    strides=[[1, 1], [2, 2], [2, 2], [2, 2]],
    norm_op="torch.nn.modules.instancenorm.InstanceNorm2d",
)
ARCHITECTURES = {
    "plain_3d": PLAIN_3D,
    "resenc_3d": RESENC_3D,
    "plain_2d": PLAIN_2D,
    "plain_3d_batchnorm_relu_nobias": _variant(
        PLAIN_3D, norm_op="torch.nn.BatchNorm3d", nonlin="torch.nn.ReLU", conv_bias=False, n_conv_per_stage=[1, 2, 3, 2]
    ),
    "resenc_3d_stem16": _variant(RESENC_3D, stem_channels=6),
}


def segforge_network(arch: dict[str, Any], in_channels: int, num_classes: int) -> torch.nn.Module:
    name, params = network_spec(arch, "test")
    builder = get_registries().network.get(name)
    return builder.build(builder.parse_params(params), in_channels, num_classes, deep_supervision=False).eval()


def nnunet_network(arch: dict[str, Any], in_channels: int, num_classes: int) -> torch.nn.Module:
    """The network as nnU-Net builds it from plans (import paths resolved like its get_network_from_plans)."""
    pytest.importorskip("dynamic_network_architectures")
    kwargs = dict(arch["arch_kwargs"])
    for key in arch["_kw_requires_import"]:
        if kwargs.get(key) is not None:
            kwargs[key] = pydoc.locate(kwargs[key])
    cls = pydoc.locate(arch["network_class_name"])
    return cls(input_channels=in_channels, num_classes=num_classes, deep_supervision=False, **kwargs)


@pytest.mark.parametrize("variant", list(ARCHITECTURES))
def test_same_logits_as_dynamic_network_architectures(variant: str):
    arch = ARCHITECTURES[variant]
    torch.manual_seed(0)
    theirs = nnunet_network(arch, 2, 3)
    with torch.no_grad():  # random values everywhere (ResEnc's init zeroes norms, batch norm's stats are 0/1)
        for tensor in theirs.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.randn_like(tensor) * 0.3 + (1.0 if tensor.dim() == 1 else 0.0))
    theirs.eval()
    ours = segforge_network(arch, 2, 3)
    ours.load_state_dict(convert_state_dict(theirs.state_dict(), ours.state_dict(), "test"))
    dims = len(arch["arch_kwargs"]["kernel_sizes"][0])
    x = torch.randn(2, 2, *([16, 32, 32][-dims:]))
    with torch.no_grad():
        expected, got = theirs(x), ours(x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("fixture", [PLAIN, RESENC], ids=["plain", "resenc"])
def test_fixture_weights_cover_segforge_network_exactly(fixture):
    if not fixture.exists():
        pytest.skip(f"{fixture} not made (scripts/make_nnunet_fixture.py)")
    plans = read_json(fixture / "model" / "plans.json")
    arch = plans["configurations"]["3d_fullres"]["architecture"]
    ours = segforge_network(arch, 1, 3)
    state = load_nnunet_checkpoint(fixture / "model" / "fold_0" / "checkpoint_final.pth")["network_weights"]
    converted = convert_state_dict(state, ours.state_dict(), "fixture")
    assert list(converted) == list(ours.state_dict())
    unique = [k for k in state if ".all_modules." not in k and not k.startswith("decoder.encoder.")]
    assert len(unique) == len(converted)  # every nnU-Net tensor used once, none invented


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"network_class_name": "dynamic_network_architectures.architectures.primus.Primus"}, "network_class_name"),
        ({"network_class_name": "mypackage.unet.PlainConvUNet"}, "network_class_name"),
        ({"arch_kwargs": {"nonlin_first": True}}, "nonlin_first"),
        ({"arch_kwargs": {"norm_op": "torch.nn.LayerNorm"}}, "norm_op"),
        ({"arch_kwargs": {"nonlin": "torch.nn.SiLU"}}, "nonlin"),
        ({"arch_kwargs": {"conv_op": "torch.nn.Conv1d"}}, "conv_op"),
        ({"arch_kwargs": {"norm_op_kwargs": {"eps": 1e-5, "weird": 1}}}, "weird"),
        ({"arch_kwargs": {"block": "dynamic_network_architectures.building_blocks.residual.BottleneckD"}}, "block"),
        ({"arch_kwargs": {"unknown_switch": 3}}, "unknown_switch"),
    ],
)
def test_unsupported_architectures_are_one_line_errors_naming_the_field(change: dict, message: str):
    arch = copy.deepcopy(PLAIN_3D)
    arch["arch_kwargs"].update(change.pop("arch_kwargs", {}))
    arch.update(change)
    with pytest.raises(ConfigError) as info:
        network_spec(arch, "plans.json")
    assert message in info.value.message and "\n" not in info.value.message
    assert info.value.message.startswith("plans.json: ") and "nnU-Net" in (info.value.hint or "")


def test_torch_defaults_are_spelled_out():
    """A LeakyReLU without kwargs means torch's slope 0.01, not in place; segforge must not fill its own."""
    arch = _variant(PLAIN_3D, nonlin_kwargs=None, norm_op_kwargs=None)
    _, params = network_spec(arch, "plans.json")
    assert params["nonlin_kwargs"] == {"negative_slope": 1e-2, "inplace": False}
    assert params["norm_kwargs"] == {"eps": 1e-5, "affine": False}


def test_wrong_shape_weights_are_refused():
    ours = segforge_network(PLAIN_3D, 1, 3)
    state = {k: v.clone() for k, v in ours.state_dict().items()}
    renamed = {k.replace("encoder.stages.0.0.", "encoder.stages.0.0.convs.0."): v for k, v in state.items()}
    renamed["decoder.seg_layers.0.weight"] = torch.zeros(5, 4, 1, 1, 1)
    with pytest.raises(ConfigError, match="seg_layers.0.weight' has shape"):
        convert_state_dict(renamed, ours.state_dict(), "ckpt")
    with pytest.raises(ConfigError, match="lacks 1 weight"):
        convert_state_dict(
            {k: v for k, v in renamed.items() if k != "decoder.seg_layers.0.weight"}, ours.state_dict(), "ckpt"
        )
