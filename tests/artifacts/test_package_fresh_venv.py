"""The issue's done-when for model packages, end to end with real installs (slow: ~3 min).

A model of the example plugin's ``tiny_unet`` is trained in one throwaway venv (segforge and the
plugin pip-installed), predicted there and exported. A second, fresh venv with segforge only and
empty segforge folders (no raw, preprocessed or results data) then gets the package:
``install-model`` and ``predict -m`` refuse it naming the exact pip line for the plugin; once
the plugin is installed, ``predict -m FILE`` and ``install-model`` + ``predict --task`` write the
same segmentations, voxel for voxel, as the training venv.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import site
import sys
import sysconfig
import venv
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from test_plugin_provenance import DIST, EXAMPLE, TRAIN_FAST, Venv  # noqa: E402

pytestmark = pytest.mark.slow
PREDICT = ["--device", "cpu", "--no-tta", "--sequential"]


def make_venv(root: Path, data: Path) -> Venv:
    """A venv seeing this interpreter's dependencies (no torch reinstall) with segforge pip-installed."""
    venv.EnvBuilder(with_pip=True).create(root)
    env = Venv(root, data)
    purelib = env.ok("python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    deps = {sysconfig.get_paths()["purelib"], *site.getsitepackages()}
    (Path(purelib) / "_segforge_test_deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    env.pip_install(REPO)
    return env


def read(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Venv, Path]:
    """The training venv (predictions in ``preds``) and the package it exported."""
    try:
        importlib.metadata.distribution(DIST)
        pytest.skip(f"{DIST} is installed in this environment: a fresh venv would see it")
    except importlib.metadata.PackageNotFoundError:
        pass
    env = make_venv(tmp_path_factory.mktemp("train_venv"), tmp_path_factory.mktemp("train_data"))
    env.pip_install(EXAMPLE)
    make = "from segforge.testing.synthetic import make_task; make_task(__import__('pathlib').Path('raw/Task009_Tiny'),"
    env.ok("python", "-c", make + " n_cases=6, shape=(16, 20, 18), spacing=(1.0, 1.0, 1.0), seed=3)")
    env.ok("segforge", "plan-and-preprocess", "--task", "9", "--network", "tiny_unet", "--configs", "3d_fullres",
           "-np", "1")  # fmt: skip
    env.ok("segforge", "train", "--task", "9", "--fold", "0", "--network", "tiny_unet", "--device", "cpu", *TRAIN_FAST)
    images = env.data / "raw" / "Task009_Tiny" / "imagesTr"
    env.ok("segforge", "predict", "-i", str(images), "-o", "preds", "--task", "9", "--network", "tiny_unet", *PREDICT)
    package = env.data / "tiny_unet.zip"
    env.ok("segforge", "export-model", "--task", "9", "--network", "tiny_unet", "-o", str(package),
           "--licence", "CC0-1.0")  # fmt: skip
    return env, package


def test_fresh_venv_names_the_plugin_then_predicts_the_same_voxels(exported, tmp_path_factory) -> None:
    trained, package = exported
    fresh = make_venv(tmp_path_factory.mktemp("fresh_venv"), tmp_path_factory.mktemp("fresh_data"))
    images = tmp_path_factory.mktemp("inputs")
    for image in (trained.data / "raw" / "Task009_Tiny" / "imagesTr").glob("*_0000.nii.gz"):
        shutil.copy(image, images / image.name)
    fresh.env["SEGFORGE_CACHE"] = str(fresh.data / "cache")
    pip_line = f"pip install '{DIST}>=0.1.0,<0.2'"
    for args in (["install-model", str(package)], ["predict", "-m", str(package), "-i", str(images), "-o", "x"]):
        res = fresh.run("segforge", *args)
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and pip_line in errors[0] and "network:tiny_unet" in errors[0]
    assert not (fresh.data / "results").exists() and not (fresh.data / "cache").exists()

    fresh.pip_install(EXAMPLE)
    fresh.ok("segforge", "predict", "-m", str(package), "-i", str(images), "-o", "from_package", *PREDICT)
    fresh.ok("segforge", "install-model", str(package))
    fresh.ok("segforge", "predict", "-i", str(images), "-o", "installed", "--task", "9", "--network", "tiny_unet",
             *PREDICT)  # fmt: skip
    expected = sorted(p.name for p in (trained.data / "preds").glob("*.nii.gz"))
    assert len(expected) == 6
    for name in expected:
        reference = read(trained.data / "preds" / name)
        np.testing.assert_array_equal(read(fresh.data / "from_package" / name), reference)
        np.testing.assert_array_equal(read(fresh.data / "installed" / name), reference)
    assert not (fresh.data / "raw").exists() and not (fresh.data / "pre").exists()
