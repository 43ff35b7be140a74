"""SIGKILL ``segforge plan-and-preprocess`` at random points; a re-run equals an uninterrupted run.

The kill lands after a random number of finished cases (plus a random extra moment), or for one
slow seed at a random time from the start, so fingerprint.json and the plans are also at risk.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from crash_helpers import (
    base_env,
    count_files,
    file_contents,
    plant_temporary,
    run_and_kill,
    run_ok,
    segforge_cmd,
    temporaries,
)

N_CASES = 10
DATASET = "Task011_Crash"
CMD = segforge_cmd("plan-and-preprocess", "--task", "11", "-np", "1", "--configs", "3d_fullres")


@pytest.fixture(scope="module")
def raw_and_reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    from segforge.testing.synthetic import make_task

    root = tmp_path_factory.mktemp("preprocess_crash")
    make_task(root / "raw" / DATASET, n_cases=N_CASES, shape=(40, 56, 48), spacing=(2.0, 1.0, 1.0), seed=11)
    run_ok(CMD, base_env(raw=root / "raw", preprocessed=root / "reference"))
    return root / "raw", file_contents(root / "reference")


def _kill_and_rerun(raw: Path, reference: dict[str, object], tmp_path: Path, seed: int, by_time: bool = False) -> None:
    rng = np.random.default_rng(seed)
    pre = tmp_path / "pre"
    cases = pre / DATASET / "segforgePlans_3d_fullres"
    env = base_env(raw=raw, preprocessed=pre)
    if by_time:
        start, delay = time.monotonic(), float(rng.uniform(0.5, 4.0))
        report = run_and_kill(CMD, env, [pre], lambda: time.monotonic() - start > delay, rng, 0.0)
    else:
        kill_at = int(rng.integers(1, N_CASES - 2))
        report = run_and_kill(CMD, env, [pre], lambda: count_files(cases, "*.json") >= kill_at, rng, 0.05)
    assert report.corrupt == [], report.corrupt
    assert report.killed, f"finished before the kill point ({report.returncode}): {report.stderr}"
    if not by_time:
        assert count_files(cases, "*.json") < N_CASES

    plant_temporary(cases / f"case_{N_CASES - 1:03d}.npy")
    run_ok(CMD, env)
    assert file_contents(pre) == reference
    assert temporaries(pre) == []


def test_preprocess_killed_midway_then_rerun_equals_uninterrupted(raw_and_reference, tmp_path: Path):
    _kill_and_rerun(*raw_and_reference, tmp_path, seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_preprocess_killed_after_random_cases(raw_and_reference, tmp_path: Path, seed: int):
    _kill_and_rerun(*raw_and_reference, tmp_path, seed=seed)


@pytest.mark.slow
def test_preprocess_killed_at_a_random_time(raw_and_reference, tmp_path: Path):
    _kill_and_rerun(*raw_and_reference, tmp_path, seed=7, by_time=True)
