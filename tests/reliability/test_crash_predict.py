"""SIGKILL ``segforge predict --save-probabilities`` at random points; ``--continue`` equals an uninterrupted run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from crash_helpers import (
    base_env,
    count_files,
    file_contents,
    plant_temporary,
    prepare_tiny_task,
    run_and_kill,
    run_ok,
    segforge_cmd,
    temporaries,
)

DATASET = "Task013_Crash"
N_CASES = 6
RUN = Path("results") / DATASET / "3d_fullres" / "default__generic_unet__segforgePlans"


def predict_cmd(root: Path, out: Path) -> list[str]:
    return segforge_cmd("predict", "-i", str(root / "inputs" / "imagesTr"), "-o", str(out), "-m", str(root / RUN),
                        "--folds", "0", "--save-probabilities", "--device", "cpu", "--precision", "fp32")  # fmt: skip


@pytest.fixture(scope="module")
def model_and_reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """A tiny model trained for one epoch, larger input cases (many tiles each), and their predictions."""
    from segforge.testing.synthetic import make_task

    root = prepare_tiny_task(tmp_path_factory.mktemp("predict_crash"), 13, DATASET)
    env = base_env(raw=root / "raw", preprocessed=root / "pre", results=root / "results")
    train = ["train", "--task", "13", "--fold", "0", "--device", "cpu", "--epochs", "1",
             "--iterations-per-epoch", "2", "--set", "threads=1", "--set", "val_iterations=1"]  # fmt: skip
    run_ok(segforge_cmd(*train), env)
    make_task(root / "inputs", n_cases=N_CASES, shape=(32, 40, 40), spacing=(1.0, 1.0, 1.0), seed=13)
    run_ok(predict_cmd(root, root / "reference"), env)
    return root, file_contents(root / "reference")


def _kill_and_continue(root: Path, reference: dict[str, object], tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    out = tmp_path / "preds"
    env = base_env(raw=root / "raw", preprocessed=root / "pre", results=root / "results")
    kill_at = int(rng.integers(1, N_CASES - 2))
    cmd = predict_cmd(root, out)

    report = run_and_kill(cmd, env, [out], lambda: count_files(out, "*.nii.gz") >= kill_at, rng, 0.15)
    assert report.corrupt == [], report.corrupt
    assert report.killed, f"predict finished before the kill point ({report.returncode}): {report.stderr}"
    assert count_files(out, "*.nii.gz") < N_CASES

    last = f"case_{N_CASES - 1:03d}"  # never done at the kill point
    plant_temporary(out / f"{last}.nii.gz", ".nii.gz")
    plant_temporary(out / f"{last}.npz")
    run_ok([*cmd, "--continue"], env)
    assert file_contents(out) == reference
    assert temporaries(out) == []


def test_predict_killed_midway_then_continue_equals_uninterrupted(model_and_reference, tmp_path: Path):
    _kill_and_continue(*model_and_reference, tmp_path, seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_predict_killed_at_more_random_points(model_and_reference, tmp_path: Path, seed: int):
    _kill_and_continue(*model_and_reference, tmp_path, seed=seed)
