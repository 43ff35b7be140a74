"""The import-layer contracts of pyproject's [tool.importlinter] hold, and catch an upward import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytest.importorskip("importlinter", reason="import-linter is not installed (pip install -e '.[test]')")


def _lint_imports(source_root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` over the segforge package found first on ``source_root``."""
    env = {**os.environ, "PYTHONPATH": str(source_root)}
    cmd = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_the_layers_hold():
    result = _lint_imports(REPO / "src")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    shutil.copytree(REPO / "src" / "segforge", tmp_path / "segforge", ignore=shutil.ignore_patterns("__pycache__"))
    with (tmp_path / "segforge" / "losses" / "dice.py").open("a") as fh:
        fh.write("\nfrom segforge.training import distributed as _planted  # noqa: E402,F401\n")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    assert "segforge.losses is not allowed to import segforge.training" in result.stdout
    assert "segforge.losses.dice -> segforge.training.distributed" in result.stdout
