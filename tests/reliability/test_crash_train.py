"""SIGKILL ``segforge train --deterministic`` at random points; ``--continue`` ends with the uninterrupted weights.

tests/training/test_resume.py covers SIGINT/SIGTERM (handlers run) and one SIGKILL without
comparing weights; here no handler runs, the kill point is random, and the final checkpoint
must be bit-identical to an uninterrupted run's.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from crash_helpers import (
    base_env,
    plant_temporary,
    prepare_tiny_task,
    run_and_kill,
    run_ok,
    segforge_cmd,
    temporaries,
)

DATASET = "Task012_Crash"
EPOCHS = 3
TRAIN = segforge_cmd(
    "train", "--task", "12", "--fold", "0", "--deterministic", "--device", "cpu",
    "--epochs", str(EPOCHS), "--iterations-per-epoch", "4",
    "--set", "checkpoint_every=1", "--set", "threads=1", "--set", "val_iterations=2",
)  # fmt: skip
RUN = Path("results") / DATASET / "3d_fullres" / "default__generic_unet__segforgePlans" / "fold_0"


def final_checkpoint(root: Path) -> dict:
    return torch.load(root / RUN / "checkpoint_final.pt", map_location="cpu", weights_only=True)


def without_clock(value: object) -> object:
    """``value`` without wall-clock entries (elapsed seconds, epoch times), which differ between runs."""
    if isinstance(value, dict):
        return {k: without_clock(v) for k, v in value.items() if not _is_clock(k)}
    return value


def _is_clock(key: str) -> bool:
    return key.endswith("_s") or any(word in key for word in ("elapsed", "time", "seconds", "duration"))


@pytest.fixture(scope="module")
def trained_reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = prepare_tiny_task(tmp_path_factory.mktemp("train_crash"), 12, DATASET)
    run_ok(TRAIN, base_env(raw=root / "raw", preprocessed=root / "pre", results=root / "results"))
    return root, final_checkpoint(root)


def _kill_and_continue(prepared: Path, reference: dict, tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    shutil.copytree(prepared / "pre", tmp_path / "pre")
    env = base_env(raw=prepared / "raw", preprocessed=tmp_path / "pre", results=tmp_path / "results")
    log = tmp_path / RUN / "training_log.txt"
    # kill during epoch 0 (no checkpoint yet: --continue starts over) or 1, a random moment after it
    # starts; at least one whole epoch is left, so the kill always lands before the end
    epoch = int(rng.integers(0, EPOCHS - 1))
    started = f"epoch {epoch}: lr"

    report = run_and_kill(TRAIN, env, [tmp_path / "results"], lambda: log.exists() and started in log.read_text(),
                          rng, max_extra_delay=0.25)  # fmt: skip
    assert report.corrupt == [], report.corrupt
    assert report.killed, f"training finished before the kill point ({report.returncode}): {report.stderr}"
    assert not (tmp_path / RUN / "checkpoint_final.pt").exists()

    plant_temporary(tmp_path / RUN / "checkpoint_latest.pt")
    run_ok([*TRAIN, "--continue"], env)
    resumed = final_checkpoint(tmp_path)
    assert without_clock(resumed["progress"]) == without_clock(reference["progress"])
    assert resumed["network_weights"].keys() == reference["network_weights"].keys()
    for key, value in reference["network_weights"].items():
        assert torch.equal(resumed["network_weights"][key], value), f"{key} differs from the uninterrupted run"
    assert temporaries(tmp_path / "results") == []


def test_train_killed_then_continued_equals_uninterrupted(trained_reference, tmp_path: Path):
    _kill_and_continue(*trained_reference, tmp_path, seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_train_killed_at_more_random_points(trained_reference, tmp_path: Path, seed: int):
    _kill_and_continue(*trained_reference, tmp_path, seed=seed)
