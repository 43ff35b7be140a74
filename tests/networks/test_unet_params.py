"""Shared U-Net params, and that planning-side code stays torch-free."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from segforge.networks.generic_unet import GenericUNetParams
from segforge.networks.unet_params import per_stage


def test_params_are_plain_json_with_string_layer_specs():
    params = GenericUNetParams(norm="group", norm_kwargs={"num_groups": 4}, nonlin="gelu", dropout=0.1)
    data = json.loads(params.model_dump_json())
    assert data["norm"] == "group" and data["nonlin"] == "gelu" and data["norm_kwargs"] == {"num_groups": 4}
    assert GenericUNetParams.model_validate(data) == params


def test_dims_follow_the_kernel_length():
    two_d = GenericUNetParams(features_per_stage=[4, 8], kernel_sizes=[[3, 3]] * 2, strides=[[1, 1], [2, 2]])
    assert two_d.dims == 2 and GenericUNetParams().dims == 3


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("features_per_stage", [8], "at least 2 items"),
        ("dropout", 1.0, "less than 1"),
        ("norm_kwargs", {"num_groups": 2}, "norm 'instance' does not accept num_groups"),
    ],
)
def test_invalid_values_name_the_problem(field, value, message):
    with pytest.raises(ValidationError, match=message):
        GenericUNetParams(**{field: value})


def test_per_stage_expands_cuts_and_rejects():
    assert per_stage(2, 3, "x") == [2, 2, 2]
    assert per_stage([1, 3, 4, 6, 6, 6], 4, "x") == [1, 3, 4, 6]
    with pytest.raises(ValueError, match="needs 4 entries"):
        per_stage([1, 2], 4, "x")
    with pytest.raises(ValueError, match=">= 1"):
        per_stage(0, 2, "x")


def test_loading_builtin_networks_imports_neither_torch_nor_pytest():
    code = (
        "import sys, segforge;"
        "from segforge.networks.builder import TopologyRequest;"
        "b = segforge.get_registries().network.get('generic_unet');"
        "p = b.propose(TopologyRequest((40, 56, 40), (1.0, 1.0, 1.0), 1, 3));"
        "b.constraints(p);"
        "print(sorted(m for m in ('torch', 'pytest') if m in sys.modules))"
    )
    env = {**os.environ, "SEGFORGE_DISABLE_PLUGIN_AUTOLOAD": "1"}  # builtins only: other packages may use torch
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.strip() == "[]"
