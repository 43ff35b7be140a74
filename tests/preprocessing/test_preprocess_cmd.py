"""``segforge preprocess`` through the real entry point: output, resuming and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from segforge.config.jsonio import save_model
from segforge.testing.synthetic import make_task


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SEGFORGE_RAW", str(tmp_path / "raw"))
    monkeypatch.setenv("SEGFORGE_PREPROCESSED", str(tmp_path / "pp"))
    monkeypatch.setenv("COLUMNS", "200")
    make_task(tmp_path / "raw" / "Task099_Test", n_cases=3, spacing=(2.0, 1.0, 1.5))
    return tmp_path


def test_missing_plans_says_run_plan(folders: Path, run_main) -> None:
    code, out, err = run_main(["preprocess", "--task", "99"])
    assert code == 2 and out == ""
    plans_path = folders / "pp" / "Task099_Test" / "segforgePlans.json"
    assert f"error: no plans 'segforgePlans' for Task099_Test: {plans_path} does not exist" in err
    assert "hint: run `segforge plan --task 99` first" in err


def test_preprocess_then_rerun(folders: Path, run_main, make_conf, make_plans) -> None:
    plans = make_plans(make_conf("3d_fullres", [2.0, 1.0, 1.5]), make_conf("2d", [1.0, 1.5]))
    save_model(folders / "pp" / "Task099_Test" / "segforgePlans.json", plans)
    code, out, err = run_main(["preprocess", "--task", "99", "-c", "3d_fullres", "-np", "1"])
    assert code == 0, err
    row = out.splitlines()[-1].split()
    assert row[:4] == ["segforgePlans_3d_fullres", "3d_fullres", "3", "0"] and "segforgePlans_2d" not in out
    assert "preprocessed 3 and skipped 0 case(s)" in err
    assert sorted(p.name for p in (folders / "pp" / "Task099_Test" / "segforgePlans_3d_fullres").iterdir())[:4] == [
        "case_000.json", "case_000.npy", "case_000_locs.npy", "case_000_seg.npy",
    ]  # fmt: skip
    code, out, err = run_main(["preprocess", "--task", "99", "-c", "3d_fullres,2d", "-np", "2"])
    assert code == 0, err
    assert "preprocessed 3 and skipped 3 case(s)" in err


def test_unknown_configuration(folders: Path, run_main, make_conf, make_plans) -> None:
    save_model(folders / "pp" / "Task099_Test" / "segforgePlans.json", make_plans(make_conf("3d_fullres", [1, 1, 1])))
    code, _, err = run_main(["preprocess", "--task", "99", "-c", "3d_lowres"])
    assert code == 2
    assert "error: plans 'segforgePlans' have no configuration '3d_lowres' (available: 3d_fullres)" in err
