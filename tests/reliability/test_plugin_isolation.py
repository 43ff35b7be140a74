"""A broken plugin is named (plugin, distribution, version); commands that need no components keep working.

Four ways a plugin breaks: its import raises, a hook raises, it registers an invalid component,
or its network returns wrong outputs. Fake distributions (nothing is installed) make
``importlib.metadata`` see each plugin as pip would, as in tests/test_plugins.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import pytest

from segforge import plugins
from segforge.errors import PluginError
from segforge.testing.fake_plugins import FakePlugins

DATASET = "Task016_Plugins"

IMPORT_RAISES = 'raise ImportError("needs libfoo 2.0")\n'
HOOK_RAISES = """
from segforge import hookimpl

@hookimpl
def segforge_register_losses(registry):
    raise RuntimeError("licence server unreachable")
"""
INVALID_COMPONENT = """
from pydantic import BaseModel
from segforge import hookimpl

class HalfNet:
    name = "half_net"
    version = "1.0"
    dims = (3,)

    class Params(BaseModel):
        pass

@hookimpl
def segforge_register_networks(registry):
    registry.add(HalfNet())  # no build, propose, constraints, estimate_memory
"""
WRONG_OUTPUTS = """
import torch
from segforge import hookimpl
from segforge.networks.generic_unet import GenericUNetBuilder


class _Broken(torch.nn.Module):
    def __init__(self, net, mode):
        super().__init__()
        self.net, self.mode = net, mode
        self.deep_supervision_scales = getattr(net, "deep_supervision_scales", None)

    def _fix(self, t):
        if self.mode == "channels":
            return torch.cat([t, t[:, :1]], 1)
        if self.mode == "shape":
            return t[..., :-1]
        if t.device.type == "meta":  # the planner's memory trace runs on the meta device
            return t
        raise RuntimeError("kernel not compiled for this GPU")

    def forward(self, x):
        out = self.net(x)
        return tuple(self._fix(t) for t in out) if isinstance(out, (list, tuple)) else self._fix(out)


class WrongChannels(GenericUNetBuilder):
    \"\"\"generic_unet with one output channel too many.\"\"\"
    name = "wrong_channels"
    version = "0.1"
    mode = "channels"

    def build(self, params, in_channels, num_classes, deep_supervision=True):
        return _Broken(super().build(params, in_channels, num_classes, deep_supervision), self.mode)


class WrongShape(WrongChannels):
    \"\"\"generic_unet whose output is one voxel short.\"\"\"
    name = "wrong_shape"
    mode = "shape"


class RaisingNet(WrongChannels):
    \"\"\"generic_unet whose forward raises.\"\"\"
    name = "raising_net"
    mode = "raise"


class BadEstimate(GenericUNetBuilder):
    \"\"\"generic_unet whose memory estimate raises.\"\"\"
    name = "bad_estimate"
    version = "0.1"

    def estimate_memory(self, *args, **kwargs):
        raise ValueError("no estimate for 3D")


@hookimpl
def segforge_register_networks(registry):
    registry.add(WrongChannels())
    registry.add(WrongShape())
    registry.add(RaisingNet())
    registry.add(BadEstimate())
"""

BROKEN = {
    "import": ("segforge-needsfoo", "needsfoo", IMPORT_RAISES, "failed to import: ImportError: needs libfoo 2.0"),
    "hook": ("segforge-licensed", "licensed", HOOK_RAISES,
             "failed in segforge_register_losses: RuntimeError: licence server unreachable"),
    "invalid": ("segforge-halfnet", "halfnet", INVALID_COMPONENT, "half_net"),
}  # fmt: skip


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``install(dist, plugin, source, version)``: a fake installed distribution with one plugin module."""
    folder = tmp_path / "plugin_modules"
    folder.mkdir()
    with FakePlugins(folder, monkeypatch, prefix="fake_plugin_") as fakes:
        fakes.hide_installed()

        def add(dist: str, plugin: str, source: str, version: str = "0.3") -> None:
            fakes.install(dist, source, plugin=plugin, version=version)
            plugins.reset_manager()

        yield add


def run(args: list[str], capsys) -> tuple[int, str, str]:
    from segforge.cli.app import main

    plugins.reset_manager()
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


# -- the manager's record ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_broken_plugin_is_recorded_with_name_distribution_and_cause(install, kind: str):
    dist, name, source, cause = BROKEN[kind]
    install(dist, name, source)
    manager = plugins.get_manager()
    info = manager.plugin(name)
    assert info.status == "failed" and info.dist == dist and info.version == "0.3"
    assert info.components == []  # a plugin that fails half-way leaves nothing behind
    with pytest.raises(PluginError) as error:
        plugins.get_registries()
    message = error.value.message
    assert message.startswith(f"plugin '{name}' ({dist} 0.3)") and cause in message and "\n" not in message
    assert f"SEGFORGE_DISABLE_PLUGINS={name}" in error.value.hint and f"uninstall {dist}" in error.value.hint
    assert "generic_unet" in manager.registries.network.names()  # the builtins are unaffected


def test_invalid_component_names_the_missing_attributes(install):
    install("segforge-halfnet", "halfnet", INVALID_COMPONENT)
    error = plugins.get_manager().plugin("halfnet").error
    assert "half_net" in error and "build" in error


# -- commands -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def msd_task(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from segforge.testing.synthetic import make_task

    return make_task(tmp_path_factory.mktemp("plugins_msd") / "Task16_Plugins", n_cases=3, layout="msd", seed=4)


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_commands_that_need_no_component_keep_working(install, kind, msd_task, tmp_path, monkeypatch, capsys):
    dist, name, source, _ = BROKEN[kind]
    install(dist, name, source)
    monkeypatch.setenv("SEGFORGE_RAW", str(tmp_path / "raw"))
    monkeypatch.setenv("SEGFORGE_PREPROCESSED", str(tmp_path / "pre"))

    code, out, err = run(["plugins", "list"], capsys)
    assert code == 0 and name in out and "failed" in out + err
    code, out, err = run(["info"], capsys)
    assert code == 0 and name in out + err
    code, out, err = run(["convert-msd", str(msd_task), "-np", "1"], capsys)
    assert code == 0, err
    assert (tmp_path / "raw" / "Task016_Plugins" / "dataset.json").is_file()
    code, out, err = run(["verify", "--task", "16", "-np", "1"], capsys)
    assert code == 0, err


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_pipeline_commands_stop_with_one_line_naming_the_plugin(install, kind, tmp_path, monkeypatch, capsys):
    from segforge.testing.synthetic import make_task

    dist, name, source, _ = BROKEN[kind]
    install(dist, name, source)
    make_task(tmp_path / "raw" / DATASET, n_cases=3, seed=4)
    monkeypatch.setenv("SEGFORGE_RAW", str(tmp_path / "raw"))
    monkeypatch.setenv("SEGFORGE_PREPROCESSED", str(tmp_path / "pre"))

    code, _, err = run(["fingerprint", "--task", "16", "-np", "1"], capsys)
    assert code == 2 and "Traceback" not in err
    assert len(error_lines(err)) == 1 and f"plugin '{name}' ({dist} 0.3)" in error_lines(err)[0]
    assert f"-p no:{name}" in err
    code, _, err = run(["-p", f"no:{name}", "fingerprint", "--task", "16", "-np", "1"], capsys)
    assert code == 0, err  # blocking the plugin is the documented way out


# -- networks with wrong outputs -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("network", "expectation"),
    [
        ("wrong_channels", "output has shape [2, 4, 16, 16, 16], expected [2, 3, 16, 16, 16]"),
        ("wrong_shape", "output has shape [2, 3, 16, 16, 15], expected [2, 3, 16, 16, 16]"),
    ],
)
def test_contract_kit_names_the_failed_expectation(install, network: str, expectation: str):
    from segforge.testing.contracts import check_output_shape, make_case

    install("segforge-wrongnet", "wrongnet", WRONG_OUTPUTS, version="0.1")
    builder = plugins.get_registries().network.get(network)
    case = make_case(builder, 3, patch=(16, 16, 16))
    with pytest.raises(AssertionError, match=f"network '{network}' \\(3D\\): {expectation}".replace("[", "\\[")):
        check_output_shape(case)


@pytest.fixture(scope="module")
def preprocessed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny planned and preprocessed task (in-process, once), with a 4-8-16 feature U-Net."""
    from segforge.cli.app import main
    from segforge.testing.synthetic import make_task

    root = tmp_path_factory.mktemp("plugins_task")
    make_task(root / "raw" / DATASET, n_cases=4, shape=(16, 20, 18), spacing=(1.0, 1.0, 1.0), seed=3)
    env = {"SEGFORGE_RAW": str(root / "raw"), "SEGFORGE_PREPROCESSED": str(root / "pre")}
    with mock.patch.dict(os.environ, env):
        plugins.reset_manager()
        with pytest.raises(SystemExit) as done:
            main(["plan-and-preprocess", "--task", "16", "-np", "1", "--configs", "3d_fullres"])
        plugins.reset_manager()
    assert done.value.code in (0, None)
    return root


@pytest.mark.parametrize(
    ("network", "problem"),
    [
        ("wrong_channels", "deep-supervision output 0 has 4 channels, expected 3 (one per class)"),
        ("wrong_shape", "deep-supervision output 0 has shape [2, 3, 16, 20, 19], expected [2, 3, 16, 20, 20]"),
        ("raising_net", "forward pass raised RuntimeError: kernel not compiled for this GPU"),
        ("bad_estimate", "planning (propose/constraints/estimate_memory) raised ValueError: no estimate for 3D"),
    ],
)
def test_training_a_broken_network_fails_with_one_line_naming_the_plugin(
    install, preprocessed: Path, tmp_path: Path, monkeypatch, capsys, network: str, problem: str
):
    install("segforge-wrongnet", "wrongnet", WRONG_OUTPUTS, version="0.1")
    monkeypatch.setenv("SEGFORGE_RAW", str(preprocessed / "raw"))
    monkeypatch.setenv("SEGFORGE_PREPROCESSED", str(preprocessed / "pre"))
    monkeypatch.setenv("SEGFORGE_RESULTS", str(tmp_path / "results"))
    args = ["train", "--task", "16", "--fold", "all", "--network", network, "--epochs", "1",
            "--iterations-per-epoch", "1", "--set", "val_iterations=1", "--set", "threads=1"]  # fmt: skip
    code, _, err = run(args, capsys)
    assert code == 2 and "Traceback" not in err, err
    lines = error_lines(err)
    assert lines == [f"error: network '{network}' from plugin 'wrongnet' (segforge-wrongnet 0.1): {problem}"]
    assert "segforge-wrongnet" in err.split("hint:")[1]
