"""The contract kit itself: it catches broken builders and names the failed expectation."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

from segforge.networks.generic_unet import GenericUNetBuilder
from segforge.networks.unet import UNet
from segforge.testing import NetworkBuilderContract, make_case
from segforge.testing import contracts as kit

TINY_3D = {
    "features_per_stage": [4, 8],
    "kernel_sizes": [[3, 3, 3]] * 2,
    "strides": [[1, 1, 1], [2, 2, 2]],
}


class _BrokenScalesUNet(UNet):
    deep_supervision_scales = [[1, 1, 1], [4, 4, 4]]  # one level too coarse


class _ScalesOffByOne(GenericUNetBuilder):
    """Deliberately broken: reports deep-supervision scales one level too coarse."""

    name = "broken_scales"

    def build(self, params, in_channels, num_classes, deep_supervision=True):
        net = super().build(params, in_channels, num_classes, deep_supervision)
        net.__class__ = _BrokenScalesUNet
        return net


class _NoGradient(GenericUNetBuilder):
    name = "broken_gradients"

    def build(self, params, in_channels, num_classes, deep_supervision=True):
        net = super().build(params, in_channels, num_classes, deep_supervision)
        net.register_parameter("orphan", torch.nn.Parameter(torch.zeros(1)))
        return net


class _ConstantMemory(GenericUNetBuilder):
    name = "broken_memory"

    def estimate_memory(self, params, patch_size, in_channels, num_classes, batch_size=1):
        return 1000


def test_wrong_deep_supervision_scale_names_the_output_and_shapes():
    three_stages = {
        **TINY_3D,
        "features_per_stage": [4, 8, 8],
        "kernel_sizes": [[3, 3, 3]] * 3,
        "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2]],
    }
    case = make_case(_ScalesOffByOne(), 3, three_stages, (8, 8, 8))
    with pytest.raises(
        AssertionError,
        match=r"deep-supervision output 1 has shape \[2, 3, 4, 4, 4\], "
        r"expected \[2, 3, 2, 2, 2\]",
    ):
        kit.check_deep_supervision(case)


def test_missing_gradient_names_the_parameter():
    case = make_case(_NoGradient(), 3, TINY_3D, (8, 8, 8))
    with pytest.raises(AssertionError, match="parameter 'orphan' received no gradient"):
        kit.check_gradients(case)


def test_memory_that_ignores_batch_size_is_reported():
    case = make_case(_ConstantMemory(), 3, TINY_3D, (8, 8, 8))
    with pytest.raises(AssertionError, match=r"does not grow with batch size \(1000 for 1, 1000 for 2\)"):
        kit.check_memory_estimate(case)


def test_missing_attributes_are_named():
    class NoVersion:
        name = "half_done"

    with pytest.raises(AssertionError, match="network 'half_done': 'version' must be a string"):
        kit.check_attributes(NoVersion())


def test_a_healthy_builder_passes_every_check_directly():
    case = make_case(GenericUNetBuilder(), 3, TINY_3D, (8, 8, 8))
    for check in (
        kit.check_params_roundtrip,
        kit.check_output_shape,
        kit.check_deep_supervision,
        kit.check_constraints,
        kit.check_propose,
        kit.check_gradients,
        kit.check_memory_estimate,
    ):
        check(case)


def test_params_default_to_params_then_propose():
    builder = GenericUNetBuilder()
    assert make_case(builder, 3).params == builder.Params()  # default Params() are 3D
    two_d = make_case(builder, 2, patch=(16, 16))
    assert two_d.params.dims == 2 and two_d.params.strides == [[1, 1], [2, 2], [2, 2]]


def test_plugin_author_subclass_runs_under_pytest(tmp_path):
    """A plugin's test file with a broken builder: pytest collects the kit and reports the expectation."""
    (tmp_path / "test_plugin_net.py").write_text(
        textwrap.dedent(
            """
        from segforge.networks.generic_unet import GenericUNetBuilder
        from segforge.testing import NetworkBuilderContract

        class Broken(GenericUNetBuilder):
            name = "broken"
            def estimate_memory(self, *args, **kwargs):
                return 7

        class TestBroken(NetworkBuilderContract):
            builder = Broken()
            params_3d = {"features_per_stage": [4, 8], "kernel_sizes": [[3, 3, 3]] * 2,
                         "strides": [[1, 1, 1], [2, 2, 2]]}
            params_2d = {"features_per_stage": [4, 8], "kernel_sizes": [[3, 3]] * 2, "strides": [[1, 1], [2, 2]]}
        """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    out = result.stdout
    assert result.returncode == 1, out
    assert "2 failed, 13 passed" in out, out
    assert "network 'broken' (3D): estimate_memory does not grow with batch size (7 for 1, 7 for 2)" in out


def test_kit_is_exported_and_collectable():
    assert NetworkBuilderContract.__name__ == "NetworkBuilderContract"
    assert not NetworkBuilderContract.__name__.startswith("Test")  # the base itself is never collected
