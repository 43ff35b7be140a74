"""``segforge plugins new``: the generated package passes segforge's contract kit as generated."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from segforge.scaffold.skeleton import SkeletonNames, render


def test_names_follow_the_plugin_name():
    names = SkeletonNames.from_plugin("segforge-my-unet")
    assert (names.plugin, names.dist, names.module) == ("my-unet", "segforge-my-unet", "segforge_my_unet")
    assert (names.network, names.builder_class) == ("my_unet_net", "MyUnetNetBuilder")
    assert render("{{dist}}: {{network}} {}", names) == "segforge-my-unet: my_unet_net {}"


def test_generated_package_passes_the_contract_kit(tmp_path: Path, run_main):
    code, _, err = run_main(["plugins", "new", "my-unet", "--network", "duo_net", "-o", str(tmp_path)])
    assert code == 0, err
    package = tmp_path / "segforge-my-unet"
    assert "wrote" in err and str(package) in err
    files = sorted(str(p.relative_to(package)) for p in package.rglob("*") if p.is_file())
    assert files == [
        "README.md", "pyproject.toml", "src/segforge_my_unet/__init__.py", "src/segforge_my_unet/network.py",
        "src/segforge_my_unet/plugin.py", "tests/test_contract.py",
    ]  # fmt: skip
    pyproject = (package / "pyproject.toml").read_text()
    assert 'my-unet = "segforge_my_unet.plugin"' in pyproject and 'name = "segforge-my-unet"' in pyproject
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "staging folder left behind"
    env = {**os.environ, "PYTHONPATH": str(package / "src"), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(package / "tests")],
        cwd=package, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout


def test_existing_folder_is_never_touched(tmp_path: Path, run_main):
    existing = tmp_path / "segforge-mine"
    existing.mkdir()
    (existing / "keep.txt").write_text("work")
    code, _, err = run_main(["plugins", "new", "mine", "-o", str(tmp_path)])
    assert code != 0 and "already exists" in err and "Traceback" not in err
    assert [p.name for p in existing.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize("bad", ["My Net", "9lives", "a--b"])
def test_bad_names_are_one_line_errors(tmp_path: Path, run_main, bad: str):
    code, _, err = run_main(["plugins", "new", bad, "-o", str(tmp_path)])
    assert code != 0 and "is not a usable plugin name" in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())
