"""docs/python-api.md runs: its ```python blocks, in order, in one namespace, on a tiny real task.

The page is written for Task004_Hippocampus; here the tiny synthetic task (6 training cases of
16x20x18 voxels) takes its name's place, ``imagesTs``/``labelsTs`` in the working directory are
two of its cases, and ``hippocampus.zip`` is exported (by the command the page shows) just
before the block that uses it. Blocks marked ``python skip`` need outside data and are not run.

The default run executes every block but the one that plans and trains, on the session's
trained tiny model; the slow test runs the whole page from a raw task (planning and training
take about half a minute).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

DOC = Path(__file__).resolve().parents[2] / "docs" / "python-api.md"
TASK = "Task009_Tiny"
CASES = ("case_004", "case_005")


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", DOC.read_text(), flags=re.S | re.M)


def read(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def user_folders(raw: Path, work: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``work`` with imagesTs/labelsTs (two cases of the raw task) as the current directory."""
    for case in CASES:
        (work / "imagesTs").mkdir(parents=True, exist_ok=True)
        (work / "labelsTs").mkdir(exist_ok=True)
        shutil.copy(raw / "imagesTr" / f"{case}_0000.nii.gz", work / "imagesTs")
        shutil.copy(raw / "labelsTr" / f"{case}.nii.gz", work / "labelsTs")
    monkeypatch.chdir(work)
    return work


def run_page(run_main, capsys, *, skip_training: bool) -> tuple[str, dict]:
    """Execute the page's blocks; returns what they printed and their namespace."""
    blocks = python_blocks()
    assert len(blocks) >= 6
    namespace: dict = {"__name__": "python_api_doc"}
    printed = []
    for block in blocks:
        if skip_training and "plan_and_preprocess(" in block:
            continue
        if "from_package(" in block:
            code, _, err = run_main(["export-model", "--task", "9", "--folds", "0", "-o", "hippocampus.zip",
                                     "--licence", "CC-BY-4.0"])  # fmt: skip
            assert code == 0, err
        exec(compile(block.replace("Task004_Hippocampus", TASK), str(DOC), "exec"), namespace)  # noqa: S102
        printed.append(capsys.readouterr().out)
    return "".join(printed), namespace


def check_results(work: Path, out: str, namespace: dict, run_main) -> None:
    """The page's outputs: prints, and predictions equal to what `segforge predict` writes."""
    assert "2 segmentations written" in out and "True" in out and "mean Dice" in out
    code, _, err = run_main(["predict", "--task", "9", "-f", "0", "-i", "imagesTs", "-o", "cli", "--sequential"])
    assert code == 0, err
    for case in CASES:
        cli = read(work / "cli" / f"{case}.nii.gz")
        np.testing.assert_array_equal(read(work / "predictions" / f"{case}.nii.gz"), cli)
        np.testing.assert_array_equal(read(work / "predictions_from_package" / f"{case}.nii.gz"), cli)
    assert namespace["summary"].labels == [1, 2] and len(namespace["summary"].metric_per_case) == 2


def test_the_predict_script_has_at_most_ten_lines() -> None:
    script = next(b for b in python_blocks() if "predict_folder(" in b and "from_run" in b)
    assert len([ln for ln in script.splitlines() if ln.strip()]) <= 10


def test_page_examples_run_on_a_trained_model(trained_tiny, run_main, capsys, tmp_path, monkeypatch) -> None:
    for var, sub in (("SEGFORGE_RAW", "raw"), ("SEGFORGE_PREPROCESSED", "pre"), ("SEGFORGE_RESULTS", "results")):
        monkeypatch.setenv(var, str(trained_tiny / sub))
    monkeypatch.setenv("SEGFORGE_CACHE", str(tmp_path / "cache"))
    work = user_folders(trained_tiny / "raw" / TASK, tmp_path / "work", monkeypatch)
    out, namespace = run_page(run_main, capsys, skip_training=True)
    check_results(work, out, namespace, run_main)


@pytest.mark.slow
def test_whole_page_runs_from_a_raw_task(run_main, capsys, tmp_path, monkeypatch) -> None:
    from segforge.testing.synthetic import make_task

    raw = make_task(tmp_path / "raw" / TASK, n_cases=6, shape=(16, 20, 18), spacing=(1.0, 1.0, 1.0), seed=3)
    for var, sub in (("SEGFORGE_RAW", "raw"), ("SEGFORGE_PREPROCESSED", "pre"), ("SEGFORGE_RESULTS", "results")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("SEGFORGE_CACHE", str(tmp_path / "cache"))
    work = user_folders(raw, tmp_path / "work", monkeypatch)
    out, namespace = run_page(run_main, capsys, skip_training=False)
    assert "patch size" in out and "finished 2 epochs" in out
    check_results(work, out, namespace, run_main)
