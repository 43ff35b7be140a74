"""Sharded prediction run as parallel jobs (``--part-id/--num-parts`` at the same time, one output
folder): exactly the files of a one-part run, with identical arrays and geometry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from inference_helpers import make_plans, write_checkpoint

from segforge.testing.synthetic import make_task

RUN = Path("Task099_Test") / "3d_fullres" / "default__generic_unet__segforgePlans"


@pytest.fixture
def model_and_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.setenv("SEGFORGE_RESULTS", str(tmp_path / "results"))
    fold = tmp_path / "results" / RUN / "fold_0"
    write_checkpoint(fold, make_plans((2.0, 1.0, 1.5)), seed=0)
    task = make_task(tmp_path / "raw" / "Task099_Test", n_cases=0, n_test=5, shape=(12, 16, 14), seed=2)
    return fold, task / "imagesTs"


def _predict(fold: Path, images: Path, out: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "segforge", "predict", "-i", str(images), "-o", str(out), "-m", str(fold)]
    return subprocess.Popen([*command, "--no-tta", "--sequential", *extra], stderr=subprocess.PIPE, text=True)


def _finish(jobs: list[subprocess.Popen]) -> None:
    for job in jobs:
        _, err = job.communicate(timeout=180)
        assert job.returncode == 0, err


def test_two_parallel_parts_equal_a_one_part_run(model_and_images, tmp_path: Path) -> None:
    fold, images = model_and_images
    _finish([_predict(fold, images, tmp_path / "one")])
    _finish([_predict(fold, images, tmp_path / "parts", "--part-id", str(k), "--num-parts", "2") for k in (0, 1)])

    one = sorted(p.name for p in (tmp_path / "one").glob("*.nii.gz"))
    assert one == [f"case_{i:03d}.nii.gz" for i in range(5)]
    assert sorted(p.name for p in (tmp_path / "parts").iterdir()) == sorted(
        p.name for p in (tmp_path / "one").iterdir()
    )
    for name in one:
        a, b = (sitk.ReadImage(str(tmp_path / folder / name)) for folder in ("one", "parts"))
        np.testing.assert_array_equal(sitk.GetArrayFromImage(a), sitk.GetArrayFromImage(b))
        assert (a.GetSpacing(), a.GetOrigin(), a.GetDirection()) == (b.GetSpacing(), b.GetOrigin(), b.GetDirection())
