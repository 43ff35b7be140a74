"""The trained tiny task (``trained_tiny`` in tests/conftest.py) in the environment, with a per-test model cache."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))  # segforge_tiny_task for the tests here


@pytest.fixture
def tiny_env(trained_tiny: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The trained task's folders in the environment, and a per-test model cache."""
    for var, sub in (("SEGFORGE_RAW", "raw"), ("SEGFORGE_PREPROCESSED", "pre"), ("SEGFORGE_RESULTS", "results")):
        monkeypatch.setenv(var, str(trained_tiny / sub))
    monkeypatch.setenv("SEGFORGE_CACHE", str(tmp_path / "cache"))
    return trained_tiny
