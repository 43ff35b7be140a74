"""A tiny model trained for real once per session (tiny task, 1 fold, 2 epochs x 2 iterations)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from segforge_tiny_task import prepare_task, train_folds  # noqa: E402


@pytest.fixture(scope="session")
def trained_tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``root`` with raw/pre/results of Task009_Tiny and fold 0 trained (validation summary included)."""
    root = prepare_task(tmp_path_factory.mktemp("tiny_package"))
    train_folds(root, (0,))
    return root


@pytest.fixture
def tiny_env(trained_tiny: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The trained task's folders in the environment, and a per-test model cache."""
    for var, sub in (("SEGFORGE_RAW", "raw"), ("SEGFORGE_PREPROCESSED", "pre"), ("SEGFORGE_RESULTS", "results")):
        monkeypatch.setenv(var, str(trained_tiny / sub))
    monkeypatch.setenv("SEGFORGE_CACHE", str(tmp_path / "cache"))
    return trained_tiny
