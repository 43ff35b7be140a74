"""``segforge postprocess determine|apply`` and ``predict`` applying postprocessing.json, on the tiny task."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from segforge_tiny_task import DATASET, TASK, fold_dir, prepare_task, train_folds  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folds 0 and 1 of the tiny task, each trained 2 x 2 iterations with end-of-training validation."""
    root = prepare_task(tmp_path_factory.mktemp("tiny_postprocess"))
    assert [r.status for r in train_folds(root, (0, 1))] == ["finished", "finished"]
    return root


@pytest.fixture
def task(trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(trained / "results", tmp_path / "results")
    monkeypatch.setenv("SEGFORGE_RAW", str(trained / "raw"))
    monkeypatch.setenv("SEGFORGE_PREPROCESSED", str(trained / "pre"))
    monkeypatch.setenv("SEGFORGE_RESULTS", str(tmp_path / "results"))
    return tmp_path


def _array(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def test_determine_collects_folds_and_predict_applies_the_decision(cli, task, trained):
    from segforge.postprocessing.decision import PostprocessingDecision, apply_postprocessing

    run = fold_dir(task).parent
    result = cli("postprocess", "determine", "--task", TASK)
    assert result.exit_code == 0, result.stderr
    assert "largest foreground component" in result.stdout and "3 cross-validation case(s)" in result.stdout
    crossval = run / "crossval_results_folds_0_1"
    assert sorted(p.name for p in crossval.glob("*.nii.gz")) == ["case_003.nii.gz", "case_004.nii.gz",
                                                                  "case_005.nii.gz"]  # fmt: skip
    merged = json.loads((crossval / "summary.json").read_text())
    assert [c["case_id"] for c in merged["metric_per_case"]] == ["case_003", "case_005", "case_004"]
    decision = PostprocessingDecision.model_validate_json((run / "postprocessing.json").read_text())
    assert decision.num_cases == 3 and decision.labels == [1, 2] and decision.source == str(crossval)

    images = trained / "raw" / DATASET / "imagesTr"
    common = ("-i", str(images), "--task", TASK, "--device", "cpu", "--folds", "0")
    result = cli("predict", "-o", str(task / "pp"), *common)
    assert result.exit_code == 0, result.stderr
    assert f"postprocessing: {decision.describe()} ({run / 'postprocessing.json'})" in " ".join(result.stderr.split())
    result = cli("predict", "-o", str(task / "raw"), *common, "--disable-postprocessing")
    assert result.exit_code == 0 and "ignored (--disable-postprocessing)" in " ".join(result.stderr.split())
    for file in sorted((task / "raw").glob("*.nii.gz")):
        assert np.array_equal(_array(task / "pp" / file.name), apply_postprocessing(_array(file), decision))


def _forced_decision(path: Path) -> Path:
    from segforge.config.jsonio import save_model
    from segforge.postprocessing.decision import PostprocessingDecision

    decision = PostprocessingDecision(
        labels=[1, 2], foreground_lcc=True, foreground_dice_before=0.5, foreground_dice_with_lcc=0.6,
        dice_before={"1": 0.5, "2": 0.5}, dice_after={"1": 0.6, "2": 0.6}, num_cases=1,
    )  # fmt: skip
    save_model(path, decision)
    return path


def test_apply_on_a_folder_keeps_the_largest_component_and_the_geometry(cli, tmp_path):
    seg = np.zeros((6, 8, 8), dtype=np.uint8)
    seg[0:3, 0:3, 0:3] = 1
    seg[0:3, 3:5, 0:3] = 2  # touches the class-1 block
    seg[5, 7, 7] = 2  # stray voxel
    image = sitk.GetImageFromArray(seg)
    image.SetSpacing((0.5, 0.7, 2.0))
    image.SetOrigin((10.0, -3.0, 4.0))
    (tmp_path / "in").mkdir()
    sitk.WriteImage(image, str(tmp_path / "in" / "case_a.nii.gz"))
    pp = _forced_decision(tmp_path / "postprocessing.json")
    result = cli("postprocess", "apply", "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--pp-json", str(pp))
    assert result.exit_code == 0, result.stderr
    assert "keep largest foreground component: 1 file(s) written" in result.stderr
    out = sitk.ReadImage(str(tmp_path / "out" / "case_a.nii.gz"))
    expected = seg.copy()
    expected[5, 7, 7] = 0
    assert np.array_equal(sitk.GetArrayFromImage(out), expected)
    assert out.GetSpacing() == pytest.approx((0.5, 0.7, 2.0)) and out.GetOrigin() == pytest.approx((10.0, -3.0, 4.0))


def test_apply_needs_one_decision_source(cli, tmp_path):
    result = cli("postprocess", "apply", "-i", str(tmp_path), "-o", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "error: pass exactly one of --pp-json FILE and -m RUN_FOLDER" in result.stderr


def test_determine_without_validation_is_a_one_line_error(cli, tmp_path):
    (tmp_path / "run" / "fold_0").mkdir(parents=True)
    result = cli("postprocess", "determine", "-m", str(tmp_path / "run"))
    assert result.exit_code == 2
    assert "no fold of" in result.stderr and "--validate-only" in result.stderr and "Traceback" not in result.stderr
