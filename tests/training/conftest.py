"""Fixtures for training tests: the tiny task (prepared once per session, copied per test)."""

from __future__ import annotations

from pathlib import Path

import pytest
from segforge_tiny_task import prepare_task, use_task_copy


@pytest.fixture(scope="session")
def prepared_task(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_task(tmp_path_factory.mktemp("tiny_task"))


@pytest.fixture
def task_env(prepared_task: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the prepared task; SEGFORGE_* point at it. Returns the folder holding pre/results."""
    return use_task_copy(prepared_task, tmp_path, monkeypatch)


@pytest.fixture(autouse=True)
def _restore_torch_globals():
    """Trainers set torch's thread count and determinism for the process; put them back after each test."""
    import torch

    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)
