"""Provenance end to end: train with a pip-installed plugin network, then change or remove the plugin.

In a throwaway venv (this interpreter's dependencies through a ``.pth`` file, segforge and the
example plugin pip-installed as a user would), a tiny synthetic task is planned for the
plugin's ``tiny_unet``, trained for two iterations and predicted. Then:

* the plugin is replaced by a copy at another major version: ``predict`` exits non-zero with
  one error line naming the package and the version the model was trained with;
* the plugin is uninstalled: ``plugins list`` no longer shows it, ``predict --network tiny_unet``
  (no ``-m``: the run is found by its network) says "install segforge-example-plugin" in one
  error line with no traceback, and other commands still work.

Slow (about two minutes: pip installs and seven ``segforge`` processes): ``pytest -m slow``,
and the ``plugins`` nox session runs it.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import site
import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "segforge-example-plugin"
DIST = "segforge-example-plugin"
TRAIN_FAST = ["--epochs", "1", "--iterations-per-epoch", "2", "--set", "val_iterations=1", "--set", "threads=1"]

pytestmark = pytest.mark.slow


class Venv:
    """A throwaway venv and the segforge folders its commands use."""

    def __init__(self, root: Path, data: Path) -> None:
        self.root, self.data = root, data
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("SEGFORGE_", "PYTHONPATH"))}
        self.env.update(SEGFORGE_RAW=str(data / "raw"), SEGFORGE_PREPROCESSED=str(data / "pre"),
                        SEGFORGE_RESULTS=str(data / "results"))  # fmt: skip

    def run(self, program: str, *args: str) -> subprocess.CompletedProcess:
        cmd = [str(self.root / "bin" / program), *args]
        return subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=600, cwd=self.data)

    def ok(self, program: str, *args: str) -> str:
        res = self.run(program, *args)
        assert res.returncode == 0, f"{program} {' '.join(args)} failed:\n{res.stderr[-3000:]}"
        return res.stdout

    def pip_install(self, target: Path) -> None:
        self.ok("python", "-m", "pip", "install", "-q", "--no-deps", str(target))

    def predict(self, out: str, *extra: str) -> subprocess.CompletedProcess:
        args = ["-i", "images", "-o", out, "--task", "9", "--network", "tiny_unet", "--device", "cpu", "--no-tta"]
        return self.run("segforge", "predict", *args, *extra)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """segforge and the example plugin installed; Task009 planned for tiny_unet and trained (fold all)."""
    try:
        importlib.metadata.distribution(DIST)
        pytest.skip(f"{DIST} is installed in this environment: the throwaway venv would see it and cannot remove it")
    except importlib.metadata.PackageNotFoundError:
        pass
    root = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=True).create(root)
    env = Venv(root, tmp_path_factory.mktemp("data"))
    purelib = env.ok("python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    deps = {sysconfig.get_paths()["purelib"], *site.getsitepackages()}  # torch & co. without reinstalling
    (Path(purelib) / "_segforge_test_deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    env.pip_install(REPO)
    env.pip_install(EXAMPLE)
    make = "from segforge.testing.synthetic import make_task; make_task(__import__('pathlib').Path('raw/Task009_Tiny'),"
    env.ok("python", "-c", make + " n_cases=4, shape=(16, 20, 18), spacing=(1.0, 1.0, 1.0), seed=3)")
    images = env.data / "images"
    images.mkdir()
    for case in sorted((env.data / "raw" / "Task009_Tiny" / "imagesTr").glob("*_0000.nii.gz"))[:2]:
        shutil.copy(case, images / case.name)
    env.ok("segforge", "plan-and-preprocess", "--task", "9", "--network", "tiny_unet", "--configs", "3d_fullres",
           "-np", "1")  # fmt: skip
    env.ok("segforge", "train", "--task", "9", "--fold", "all", "--network", "tiny_unet", "--device", "cpu",
           *TRAIN_FAST)  # fmt: skip
    return env


def _error_lines(res: subprocess.CompletedProcess) -> list[str]:
    return [line for line in res.stderr.splitlines() if line.startswith("error:")]


def test_the_checkpoint_records_the_plugin_and_predict_works(trained: Venv) -> None:
    run = trained.data / "results" / "Task009_Tiny" / "3d_fullres" / "default__tiny_unet__segforgePlans__tiny_unet"
    manifest = json.loads((run / "fold_all" / "manifest.json").read_text())
    assert manifest["network"]["origin"]["dist"] == DIST and manifest["network"]["origin"]["version"] == "0.1.0"
    res = trained.predict("preds_ok")
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (trained.data / "preds_ok").glob("*.nii.gz")) == sorted(
        p.name.replace("_0000", "") for p in (trained.data / "images").iterdir()
    )


def test_another_major_version_of_the_plugin_is_a_one_line_error(trained: Venv, tmp_path: Path) -> None:
    copy = tmp_path / "plugin_v1"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    pyproject = copy / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "0.1.0"', 'version = "1.0.0"', 1))
    trained.pip_install(copy)
    try:
        res = trained.predict("preds_v1")
        assert res.returncode != 0 and "Traceback" not in res.stderr
        assert _error_lines(res) == [
            f"error: the model was trained with network 'tiny_unet' from {DIST} 0.1.0, but {DIST} 1.0.0 is "
            f"installed (another major version): install {DIST}==0.1.0"
        ]
    finally:
        trained.pip_install(EXAMPLE)  # back to the version the model was trained with


def test_uninstalled_plugin_names_the_package_and_the_rest_works(trained: Venv) -> None:
    trained.ok("python", "-m", "pip", "uninstall", "-q", "-y", DIST)
    listed = json.loads(trained.ok("segforge", "plugins", "list", "--json"))
    listed = listed["plugins"] if isinstance(listed, dict) else listed
    assert DIST not in {p.get("dist") for p in listed} and "example" not in {p["name"] for p in listed}
    res = trained.predict("preds_gone")
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert _error_lines(res) == [
        f"error: the model was trained with network 'tiny_unet' from {DIST}, which is not installed: install {DIST}"
    ]
    assert not list((trained.data / "preds_gone").glob("*.nii.gz"))
    components = trained.ok("segforge", "components", "list")
    assert "generic_unet" in components and "tiny_unet" not in components
