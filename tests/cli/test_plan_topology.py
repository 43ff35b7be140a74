"""``segforge plan`` shows each network's topology, also for plugin networks (issue 6, gap 3)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from segforge.testing.synthetic import make_task

DESCRIBED_PLUGIN = '''
from segforge import hookimpl
from segforge.networks.generic_unet import GenericUNetBuilder


class DescribedUNet(GenericUNetBuilder):
    """generic_unet under another name, with its own one-line summary."""

    name = "described_unet"

    def describe(self, params):
        return f"{len(params.strides)} levels, widest {max(params.features_per_stage)}"


@hookimpl
def segforge_register_networks(registry):
    registry.add(DescribedUNet())
'''


@pytest.fixture
def task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from segforge.planning import intensity

    monkeypatch.setattr(intensity, "TOTAL_FOREGROUND_SAMPLES", 10**5)
    monkeypatch.setenv("SEGFORGE_RAW", str(tmp_path / "raw"))
    monkeypatch.setenv("SEGFORGE_PREPROCESSED", str(tmp_path / "pre"))
    make_task(tmp_path / "raw" / "Task007_Ellipses", n_cases=3, shape=(12, 16, 14), spacing=(2.0, 1.0, 1.5))
    return tmp_path / "pre" / "Task007_Ellipses"


def _row(stdout: str, config: str) -> list[str]:
    """The table row of ``config``, split into cells (rich separates columns by at least two spaces)."""
    line = next(line for line in stdout.splitlines() if line.strip().startswith(config))
    return re.split(r"\s{2,}", line.strip())


def test_unet_plans_show_the_stage_count(task, cli):
    res = cli("plan", "--task", "7", "--configs", "3d_fullres", "-np", "1")
    assert res.exit_code == 0, res.stderr
    assert "topology" in res.stdout
    strides = json.loads((task / "segforgePlans.json").read_text())["configurations"]["3d_fullres"]["network"]
    assert _row(res.stdout, "3d_fullres")[5] == f"{len(strides['params']['strides'])} stages"


def test_a_plugin_networks_describe_fills_the_cell(task, cli, fake_dists):
    fake_dists("segforge-described", DESCRIBED_PLUGIN)
    res = cli("plan", "--task", "7", "--network", "described_unet", "--configs", "3d_fullres", "-np", "1")
    assert res.exit_code == 0, res.stderr
    params = json.loads((task / "segforgePlans__described_unet.json").read_text())["configurations"]["3d_fullres"]
    params = params["network"]["params"]
    expected = f"{len(params['strides'])} levels, widest {max(params['features_per_stage'])}"
    assert _row(res.stdout, "3d_fullres")[5] == expected
