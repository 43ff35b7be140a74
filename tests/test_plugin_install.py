"""A real plugin package, pip-installed into a throwaway venv, shows up with no change to segforge.

The venv reuses this interpreter's installed dependencies through a ``.pth`` file (so torch
is not installed again), then installs segforge and the example plugin with pip, as a user
would. This is the end-to-end proof of entry-point discovery; unit tests use fake
distributions instead.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "segforge-example-plugin"


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEGFORGE_", "PYTHONPATH"))}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, **kw)


@pytest.fixture(scope="module")
def throwaway_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("git") is None and not (REPO / "pyproject.toml").exists():
        pytest.skip("repository checkout not available")
    root = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=True).create(root)
    py = root / "bin" / "python"
    purelib = _run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    # make this interpreter's dependencies (torch, numpy, ...) visible without reinstalling them
    deps = {sysconfig.get_paths()["purelib"], *site.getsitepackages()}
    (Path(purelib) / "_segforge_test_deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    for target in (REPO, EXAMPLE):
        res = _run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(target)])
        assert res.returncode == 0, f"pip install {target.name} failed:\n{res.stderr[-2000:]}"
    return root


def test_installed_plugin_is_listed_with_its_distribution(throwaway_venv: Path) -> None:
    res = _run([str(throwaway_venv / "bin" / "segforge"), "plugins", "list", "--json"])
    assert res.returncode == 0, res.stderr
    plugins = json.loads(res.stdout)
    plugins = plugins["plugins"] if isinstance(plugins, dict) else plugins
    example = next(p for p in plugins if p["name"] == "example")
    assert example["dist"] == "segforge-example-plugin"
    assert example["version"] == "0.1.0"
    assert example["status"] == "ok"
    assert {"kind": "network", "name": "tiny_unet"}.items() <= example["components"][0].items()


def test_installed_plugin_network_builds_through_public_api(throwaway_venv: Path) -> None:
    code = (
        "import torch, segforge\n"
        "net = segforge.build_network('tiny_unet', {'features': 4}, in_channels=1, num_classes=3,"
        " deep_supervision=False)\n"
        "print(tuple(net(torch.zeros(1, 1, 8, 8, 8)).shape))\n"
        "print(segforge.get_registries().network.entry('tiny_unet').origin.dist)\n"
    )
    res = _run([str(throwaway_venv / "bin" / "python"), "-c", code])
    assert res.returncode == 0, res.stderr
    assert res.stdout.split("\n")[:2] == ["(1, 3, 8, 8, 8)", "segforge-example-plugin"]


def test_disabling_the_installed_plugin_hides_it(throwaway_venv: Path) -> None:
    env_cmd = [str(throwaway_venv / "bin" / "segforge"), "-p", "no:example", "plugins", "list", "--json"]
    res = _run(env_cmd)
    assert res.returncode == 0, res.stderr
    plugins = json.loads(res.stdout)
    plugins = plugins["plugins"] if isinstance(plugins, dict) else plugins
    assert [p["status"] for p in plugins if p["name"] == "example"] in ([], ["blocked"])
    assert sys.executable  # the parent interpreter is untouched
