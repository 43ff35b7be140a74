"""docs/python-api.md runs: every ```python block, in order, in one namespace, on a tiny real task.

The page is written for Task004_Hippocampus; here a synthetic task (6 training cases of
16x20x18 voxels) takes its name's place, ``imagesTs``/``labelsTs`` in the working directory are
two of its cases, and ``hippocampus.zip`` is exported (by the command the page shows) just
before the block that uses it. Blocks marked ``python skip`` need outside data and are not run.
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


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def read(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


@pytest.fixture
def user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from segforge.testing.synthetic import make_task

    raw = make_task(tmp_path / "raw" / TASK, n_cases=6, shape=(16, 20, 18), spacing=(1.0, 1.0, 1.0), seed=3)
    for var, sub in (("SEGFORGE_RAW", "raw"), ("SEGFORGE_PREPROCESSED", "pre"), ("SEGFORGE_RESULTS", "results")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("SEGFORGE_CACHE", str(tmp_path / "cache"))
    work = tmp_path / "work"
    for case in ("case_004", "case_005"):
        (work / "imagesTs").mkdir(parents=True, exist_ok=True)
        (work / "labelsTs").mkdir(exist_ok=True)
        shutil.copy(raw / "imagesTr" / f"{case}_0000.nii.gz", work / "imagesTs")
        shutil.copy(raw / "labelsTr" / f"{case}.nii.gz", work / "labelsTs")
    monkeypatch.chdir(work)
    return work


def test_every_python_block_of_the_page_runs(user_dir: Path, run_main, capsys) -> None:
    blocks = python_blocks(DOC.read_text())
    assert len(blocks) >= 6
    predict_script = next(b for b in blocks if "predict_folder(" in b and "from_run" in b)
    assert len([ln for ln in predict_script.splitlines() if ln.strip()]) <= 10  # "a script of <= 10 lines"
    namespace: dict = {"__name__": "python_api_doc"}
    printed = []
    for block in blocks:
        if "from_package(" in block:
            code, _, err = run_main(["export-model", "--task", "9", "--folds", "0", "-o", "hippocampus.zip",
                                     "--licence", "CC-BY-4.0"])  # fmt: skip
            assert code == 0, err
        exec(compile(block.replace("Task004_Hippocampus", TASK), str(DOC), "exec"), namespace)  # noqa: S102
        printed.append(capsys.readouterr().out)
    out = "".join(printed)
    assert "2 segmentations written" in out and "True" in out and "mean Dice" in out
    # predict_folder wrote what `segforge predict` writes, and the package predicts the same voxels
    code, _, err = run_main(["predict", "--task", "9", "-f", "0", "-i", "imagesTs", "-o", "cli", "--sequential"])
    assert code == 0, err
    for case in ("case_004", "case_005"):
        cli = read(user_dir / "cli" / f"{case}.nii.gz")
        np.testing.assert_array_equal(read(user_dir / "predictions" / f"{case}.nii.gz"), cli)
        np.testing.assert_array_equal(read(user_dir / "predictions_from_package" / f"{case}.nii.gz"), cli)
    assert namespace["summary"].labels == [1, 2] and len(namespace["summary"].metric_per_case) == 2
