"""End-of-training validation and ``segforge train --validate-only`` on the tiny synthetic task."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parent))
from segforge_tiny_task import DATASET, TASK, fold_dir, prepare_task, train_folds  # noqa: E402

VAL_IDS = ["case_003", "case_005"]  # fold 0 of the tiny task's 5-fold split


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny task with fold 0 trained for 2 epochs of 2 iterations (validation included)."""
    root = prepare_task(tmp_path_factory.mktemp("tiny_validation"))
    (result,) = train_folds(root, (0,))
    assert result.status == "finished"
    return root


@pytest.fixture
def task(trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(trained / "results", tmp_path / "results")
    monkeypatch.setenv("SEGFORGE_RAW", str(trained / "raw"))
    monkeypatch.setenv("SEGFORGE_PREPROCESSED", str(trained / "pre"))
    monkeypatch.setenv("SEGFORGE_RESULTS", str(tmp_path / "results"))
    return tmp_path


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from segforge.cli.app import main

    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _dice(ref: np.ndarray, pred: np.ndarray, label: int) -> float:
    r, p = ref == label, pred == label
    return 2 * np.count_nonzero(r & p) / (np.count_nonzero(r) + np.count_nonzero(p))


def test_validation_predicts_each_case_in_raw_geometry(trained: Path):
    folder = fold_dir(trained) / "validation"
    assert sorted(p.name for p in folder.glob("*.nii.gz")) == [f"{c}.nii.gz" for c in VAL_IDS]
    for case_id in VAL_IDS:
        raw = sitk.ReadImage(str(trained / "raw" / DATASET / "imagesTr" / f"{case_id}_0000.nii.gz"))
        pred = sitk.ReadImage(str(folder / f"{case_id}.nii.gz"))
        assert pred.GetSize() == raw.GetSize()
        assert pred.GetSpacing() == pytest.approx(raw.GetSpacing())
        assert pred.GetOrigin() == pytest.approx(raw.GetOrigin())
        assert pred.GetDirection() == pytest.approx(raw.GetDirection())
        assert set(np.unique(sitk.GetArrayFromImage(pred))) <= {0, 1, 2}


def test_summary_matches_dice_computed_from_the_files(trained: Path):
    folder = fold_dir(trained) / "validation"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["labels"] == [1, 2] and [c["case_id"] for c in summary["metric_per_case"]] == VAL_IDS
    case = summary["metric_per_case"][0]
    assert case["reference_file"].endswith(f"{DATASET}/labelsTr/{VAL_IDS[0]}.nii.gz")
    ref = sitk.GetArrayFromImage(sitk.ReadImage(case["reference_file"]))
    pred = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / f"{VAL_IDS[0]}.nii.gz")))
    for label in (1, 2):
        assert case["metrics"][str(label)]["dice"] == pytest.approx(_dice(ref, pred, label))
    log = (fold_dir(trained) / "training_log.txt").read_text()
    assert "validation: 2 case(s) predicted, 0 already there" in log
    mean_1 = summary["mean"]["1"]["dice"]
    assert f"validation: mean Dice label 1: {mean_1:.4f}" in log


def test_validate_only_recreates_resumes_and_writes_probabilities(task: Path, capsys):
    folder = fold_dir(task) / "validation"
    shutil.rmtree(folder)
    code, out, err = _cli(capsys, "train", "--task", TASK, "--fold", "0", "--validate-only", "--npz")
    assert code == 0, err
    assert "2 case(s) predicted, 0 already there" in err and "mean" in out  # the evaluation table
    assert (folder / "summary.json").is_file()
    for case_id in VAL_IDS:
        info = json.loads((folder / f"{case_id}.json").read_text())
        with np.load(folder / f"{case_id}.npz", allow_pickle=False) as data:
            probs = data["probabilities"]
        assert info["labels"] == [0, 1, 2] and list(probs.shape) == [3, *info["shape"]]
        assert np.allclose(probs.astype(np.float32).sum(axis=0), 1.0, atol=5e-3)
    (folder / f"{VAL_IDS[1]}.nii.gz").unlink()
    code, _, err = _cli(capsys, "train", "--task", TASK, "--fold", "0", "--validate-only", "--npz")
    assert code == 0 and "1 case(s) predicted, 1 already there" in err
    assert not (fold_dir(task) / "checkpoint_latest.pt").exists()  # nothing was trained


def test_validate_only_needs_the_final_checkpoint(task: Path, capsys):
    code, _, err = _cli(capsys, "train", "--task", TASK, "--fold", "1", "--validate-only")
    assert code == 2
    assert "fold_1/checkpoint_final.pt not found: --validate-only needs a finished training" in err
    assert "train the fold first" in err and "Traceback" not in err


def test_fold_all_has_nothing_to_validate():
    from segforge.training.validation import validate_fold

    lines: list[str] = []
    context = SimpleNamespace(val_ids=[], fold="all")
    assert validate_fold(context, SimpleNamespace(line=lines.append)) is None
    assert lines == ["validation: fold all has no validation cases; end-of-training validation skipped"]


def test_run_validation_false_skips_it():
    from segforge.training.validation import validate_after_training

    lines: list[str] = []
    trainer = SimpleNamespace(params=SimpleNamespace(run_validation=False), log=SimpleNamespace(line=lines.append))
    assert validate_after_training(trainer) is None and lines == ["validation: skipped (run_validation=false)"]
