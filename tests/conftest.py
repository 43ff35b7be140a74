"""Shared fixtures: the real hippocampus data (skipped with a reason when absent) and isolation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(os.environ.get("SEGFORGE_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
HIPPOCAMPUS_MSD = SHARED_DATA / "Task04_Hippocampus"


@pytest.fixture(scope="session")
def hippocampus_msd() -> Path:
    """The MSD Task04 Hippocampus folder (imagesTr, labelsTr, dataset.json); skips when absent."""
    if not (HIPPOCAMPUS_MSD / "dataset.json").is_file():
        pytest.skip(f"real hippocampus data not found at {HIPPOCAMPUS_MSD} (set SEGFORGE_TEST_DATA)")
    return HIPPOCAMPUS_MSD


@pytest.fixture(autouse=True)
def _isolated_segforge(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Each test gets its own folders and a fresh plugin manager; the user's env cannot leak in."""
    for var in (
        "SEGFORGE_RAW",
        "SEGFORGE_PREPROCESSED",
        "SEGFORGE_RESULTS",
        "nnUNet_raw_data_base",
        "nnUNet_preprocessed",
        "RESULTS_FOLDER",
        "SEGFORGE_DISABLE_PLUGINS",
        "SEGFORGE_PLUGINS",
        "SEGFORGE_DISABLE_PLUGIN_AUTOLOAD",
        "SEGFORGE_DEBUG",
    ):
        monkeypatch.delenv(var, raising=False)
    # exported networks and remembered backend speeds go to the test's folder, not ~/.cache
    monkeypatch.setenv("SEGFORGE_CACHE", str(tmp_path / "segforge_cache"))
    from segforge import plugins

    plugins.reset_manager()
    yield
    plugins.reset_manager()


@pytest.fixture
def run_main(capsys: pytest.CaptureFixture[str]):
    """``run_main(["verify", ...])`` -> ``(exit code, stdout, stderr)`` of ``segforge`` run in-process.

    Shared by the command tests of several folders, so each does not rewrite the SystemExit handling.
    """
    from segforge.cli.app import main

    def run(args: list[str]) -> tuple[int, str, str]:
        try:
            main(args)
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture(scope="session")
def trained_tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``root`` with raw/pre/results of the tiny task (tests/training) and fold 0 trained for real.

    Shared by the model-package and Python-API tests, so the session trains it once (~20 s).
    """
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent / "training"))
    from segforge_tiny_task import prepare_task, train_folds

    root = prepare_task(tmp_path_factory.mktemp("tiny_trained"))
    train_folds(root, (0,))
    return root
