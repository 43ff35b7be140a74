"""Atomic writes: the final name holds the old or the new complete file, never a partial one."""

from __future__ import annotations

import os
import stat

import pytest

from segforge.atomic import atomic_path, atomic_write_json, atomic_write_text


def test_write_replaces_content_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "plans.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"a": 2})
    assert target.read_text() == '{\n  "a": 2\n}\n'
    assert [p.name for p in target.parent.iterdir()] == ["plans.json"]


def test_failed_write_keeps_previous_file_intact(tmp_path):
    target = tmp_path / "summary.json"
    atomic_write_text(target, "old complete content")
    with pytest.raises(OSError, match="disk full"), atomic_path(target) as tmp:
        tmp.write_text("half-writ")
        raise OSError("disk full (simulated)")
    assert target.read_text() == "old complete content"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_suffix_is_kept_last_for_writers_that_pick_a_format_by_ending(tmp_path):
    with atomic_path(tmp_path / "case.nii.gz", suffix=".nii.gz") as tmp:
        assert tmp.name.endswith(".tmp.nii.gz") and tmp.name.startswith(".case.nii.gz.")
        tmp.write_bytes(b"x")
    assert (tmp_path / "case.nii.gz").read_bytes() == b"x"


def test_final_file_mode_follows_umask_not_mkstemp(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "report.html", "<html></html>")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "report.html").stat().st_mode) == 0o644


def test_json_refuses_nan(tmp_path):
    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "x.json", {"dice": float("nan")})
    assert not (tmp_path / "x.json").exists()
