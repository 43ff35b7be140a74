"""Sharded preprocessing (``--part-id/--num-parts``): parts are disjoint, cover all cases, and the
files they write are byte-identical to a one-part run's, whether the parts run one after the other
or at the same time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from segforge.cli.app import main
from segforge.config.jsonio import save_model
from segforge.preprocessing.shards import shard_ids
from segforge.testing.synthetic import make_task

TASK_DIR = "Task099_Test"


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def task(tmp_path: Path, make_conf, make_plans) -> Path:
    make_task(tmp_path / "raw" / TASK_DIR, n_cases=5, spacing=(2.0, 1.0, 1.5), seed=4)
    plans = make_plans(make_conf("3d_fullres", [2.0, 1.0, 1.5]))
    for root in ("pp_one", "pp_seq", "pp_par"):
        save_model(tmp_path / root / TASK_DIR / "segforgePlans.json", plans)
    return tmp_path


def _use(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, root: str) -> Path:
    monkeypatch.setenv("SEGFORGE_RAW", str(tmp_path / "raw"))
    monkeypatch.setenv("SEGFORGE_PREPROCESSED", str(tmp_path / root))
    return tmp_path / root / TASK_DIR / "segforgePlans_3d_fullres"


def test_shard_ids_are_disjoint_and_cover_everything() -> None:
    ids = [f"case_{i:03d}" for i in (4, 0, 3, 1, 2)]
    parts = [shard_ids(ids, k, 3) for k in range(3)]
    assert parts == [["case_000", "case_003"], ["case_001", "case_004"], ["case_002"]]
    assert shard_ids(ids, 0, 1) == sorted(ids)


@pytest.mark.parametrize(("part", "parts"), [(2, 2), (-1, 2), (0, 0)])
def test_invalid_shard_is_a_one_line_usage_error(task, monkeypatch, capsys, part, parts) -> None:
    _use(monkeypatch, task, "pp_one")
    code, err = _run(["preprocess", "--task", "99", "--part-id", str(part), "--num-parts", str(parts)], capsys)
    assert code == 2
    assert f"error: --part-id {part} / --num-parts {parts} is not a valid shard" in err
    assert "hint: use 0 <= part-id < num-parts" in err


def test_parts_in_sequence_and_in_parallel_equal_a_one_part_run(task, monkeypatch, capsys) -> None:
    one = _use(monkeypatch, task, "pp_one")
    assert _run(["preprocess", "--task", "99", "-np", "1"], capsys)[0] == 0
    reference = _files(one)
    assert len([n for n in reference if n.endswith(".json")]) == 5

    seq = _use(monkeypatch, task, "pp_seq")
    for part in (0, 1):
        code, err = _run(["preprocess", "--task", "99", "-np", "1", "--part-id", str(part), "--num-parts", "2"], capsys)
        assert code == 0, err
        if part == 0:  # sorted ids 000..004: part 0 has 000, 002, 004
            assert sorted(n for n in os.listdir(seq) if n.endswith(".json")) == [
                "case_000.json", "case_002.json", "case_004.json",
            ]  # fmt: skip
            assert "preprocessed 3 and skipped 0 case(s)" in err
    assert _files(seq) == reference

    par = _use(monkeypatch, task, "pp_par")
    command = [sys.executable, "-m", "segforge", "preprocess", "--task", "99", "-np", "1", "--num-parts", "2"]
    jobs = [subprocess.Popen([*command, "--part-id", str(k)], stderr=subprocess.PIPE, text=True) for k in (0, 1)]
    for job in jobs:
        _, err = job.communicate(timeout=120)
        assert job.returncode == 0, err
    assert _files(par) == reference
