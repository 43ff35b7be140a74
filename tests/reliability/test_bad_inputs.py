"""The bad-input corpus through the real CLI: one-line error naming the file/field, a hint, no traceback,
a non-zero exit and nothing written. Warnings-only kinds must pass with the warning shown."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from corpus import TASK, BadInput, Workspace, prepared, run_cli, snapshot, workspace
from corpus_kinds import CORPUS

__all__ = ["prepared", "workspace"]  # fixtures shared with the other reliability tests


def test_the_corpus_is_big_enough() -> None:
    assert len(CORPUS) >= 30
    assert len({c.id for c in CORPUS}) == len(CORPUS)


def test_untouched_workspace_passes_verify(workspace: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["verify", "--task", TASK, "-np", "1"], capsys)
    assert (code, err) == (0, "")
    assert out.startswith("dataset OK: 5 cases")


@pytest.mark.parametrize("bad", CORPUS, ids=lambda c: c.id)
def test_bad_input(
    bad: BadInput, workspace: Workspace, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bad.setup(workspace)
    for key, value in bad.env:
        monkeypatch.setenv(key, value)
    before = snapshot(workspace.root)
    code, out, err = run_cli(bad.argv(workspace), capsys)
    assert "Traceback" not in out + err
    assert snapshot(workspace.root) == before, "the failed command left files behind or changed them"
    if bad.severity == "warning":
        assert code == 0, err
        file, message = bad.expect.split(": ", 1)  # verify's table puts them in two columns
        assert file in err and message in " ".join(err.split()), err
        return
    assert code != 0
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert bad.expect in errors[0]
    assert "\nhint: " in "\n" + err, err


def test_every_kind_is_in_the_docs_table() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "reliability.md").read_text()
    missing = [c.id for c in CORPUS if f"| `{c.id}` |" not in doc]
    assert missing == [], "add these kinds to docs/reliability.md"


SUBPROCESS_KINDS = ["img-truncated-gz", "ckpt-truncated", "cli-unwritable-output"]


@pytest.mark.parametrize("kind", SUBPROCESS_KINDS)
def test_bad_input_in_a_real_process(kind: str, workspace: Workspace) -> None:
    """The same guarantees from a real ``python -m segforge`` process (its own stderr, exit code)."""
    bad = next(c for c in CORPUS if c.id == kind)
    bad.setup(workspace)
    before = snapshot(workspace.root)
    env = {**os.environ, **workspace.env(), "COLUMNS": "400"}
    proc = subprocess.run(
        [sys.executable, "-m", "segforge", *bad.argv(workspace)], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and bad.expect in errors[0], proc.stderr
    assert "\nhint: " in "\n" + proc.stderr
    assert snapshot(workspace.root) == before
