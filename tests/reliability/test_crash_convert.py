"""SIGKILL ``segforge convert-msd`` at random points: no corrupt final file, a re-run equals an uninterrupted run."""

from __future__ import annotations

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

N_CASES = 12


@pytest.fixture(scope="module")
def msd_and_reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """A two-channel MSD task (4D images, so conversion splits channels) and its uninterrupted conversion."""
    from segforge.testing.synthetic import make_task

    root = tmp_path_factory.mktemp("convert_crash")
    src = root / "msd" / "Task08_Crash"
    make_task(src, n_cases=N_CASES, shape=(32, 48, 48), channels=2, layout="msd", seed=5)
    run_ok(segforge_cmd("convert-msd", str(src), "-np", "1"), base_env(raw=root / "reference"))
    return src, file_contents(root / "reference")


def _kill_and_rerun(src: Path, reference: dict[str, object], tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    raw = tmp_path / "raw"
    images = raw / "Task008_Crash" / "imagesTr"
    kill_at = int(rng.integers(1, N_CASES))  # after this many image files (of 2 * N_CASES)
    env = base_env(raw=raw)
    cmd = segforge_cmd("convert-msd", str(src), "-np", "1")

    report = run_and_kill(cmd, env, [raw], lambda: count_files(images, "*.nii.gz") >= kill_at, rng, 0.05)
    assert report.corrupt == [], report.corrupt
    assert report.killed, f"convert-msd finished before the kill point ({report.returncode}): {report.stderr}"
    assert count_files(images, "*.nii.gz") < 2 * N_CASES

    plant_temporary(images / f"case_{N_CASES - 1:03d}_0001.nii.gz", ".nii.gz")
    run_ok(cmd, env)
    assert file_contents(raw) == reference
    assert temporaries(raw) == []


def test_convert_killed_midway_then_rerun_equals_uninterrupted(msd_and_reference, tmp_path: Path):
    _kill_and_rerun(*msd_and_reference, tmp_path, seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_convert_killed_at_more_random_points(msd_and_reference, tmp_path: Path, seed: int):
    _kill_and_rerun(*msd_and_reference, tmp_path, seed=seed)
