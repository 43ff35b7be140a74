"""End to end through the CLI: a region-based and a sparsely annotated (ignore label) dataset each
plan-and-preprocess, train (1 epoch, 2 iterations, tiny network) and predict valid label maps."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from segforge_tiny_task import TINY_FEATURES, shrink_network  # noqa: E402

from segforge.inference.model_loading import load_model  # noqa: E402
from segforge.testing.synthetic import make_region_task, make_sparse_task  # noqa: E402

SHAPE = (12, 16, 14)


def run(*args: str) -> None:
    from segforge import plugins
    from segforge.cli.app import main

    plugins.reset_manager()
    try:
        main(list(args))
    except SystemExit as exc:
        assert exc.code in (0, None), f"segforge {' '.join(args)} exited with {exc.code}"
    finally:
        plugins.reset_manager()


@pytest.fixture
def folders(tmp_path, monkeypatch):
    for var, sub in (("SEGFORGE_RAW", "raw"), ("SEGFORGE_PREPROCESSED", "pre"), ("SEGFORGE_RESULTS", "results")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    return tmp_path


def plan_train_predict(root: Path, dataset: str, task: str) -> tuple[Path, list[str]]:
    run("plan-and-preprocess", "--task", task, "-np", "1", "--configs", "3d_fullres")
    shrink_network(root / "pre" / dataset / "segforgePlans.json", TINY_FEATURES)
    run("train", "--task", task, "--fold", "0", "--epochs", "1", "--iterations-per-epoch", "2",
        "--set", "val_iterations=1", "--set", "threads=1")  # fmt: skip
    out = root / "preds"
    run("predict", "-i", str(root / "raw" / dataset / "imagesTs"), "-o", str(out), "--task", task, "-f", "0",
        "--sequential")  # fmt: skip
    log = (next((root / "results" / dataset).rglob("training_log.txt"))).read_text()
    return out, log.splitlines()


def check_geometry(pred_file: Path, image_file: Path) -> np.ndarray:
    pred, image = sitk.ReadImage(str(pred_file)), sitk.ReadImage(str(image_file))
    assert pred.GetSize() == image.GetSize()
    np.testing.assert_allclose(pred.GetSpacing(), image.GetSpacing())
    np.testing.assert_allclose(pred.GetOrigin(), image.GetOrigin())
    return sitk.GetArrayFromImage(pred)


def test_region_dataset_trains_with_dice_bce_and_predicts_in_class_order(folders):
    dataset = "Dataset061_Regions"
    make_region_task(folders / "raw" / dataset, n_cases=5, shape=SHAPE, seed=1, n_test=2, regions_class_order=(1, 2, 3))
    out, log = plan_train_predict(folders, dataset, "61")
    plans = json.loads((folders / "pre" / dataset / "segforgePlans.json").read_text())
    assert plans["regions"] == [[1, 2, 3], [2, 3], [3]] and plans["regions_class_order"] == [1, 2, 3]
    assert any("loss dc_bce" in line for line in log)
    epoch = next(line for line in log if "pseudo Dice [" in line)
    assert epoch.split("pseudo Dice [")[1].split("]")[0].count(",") == 2  # one entry per region
    fold = next((folders / "results" / dataset).rglob("fold_0"))
    assert load_model(fold / "checkpoint_final.pt").num_classes == 3  # one per region, no background channel
    for case in ("case_005", "case_006"):
        seg = check_geometry(out / f"{case}.nii.gz", folders / "raw" / dataset / "imagesTs" / f"{case}_0000.nii.gz")
        assert set(np.unique(seg).tolist()) <= {0, 1, 2, 3}
    summary = json.loads((fold / "validation" / "summary.json").read_text())
    assert summary["labels"] == [1, 2, 3]  # regions scored under their class-order labels


def test_sparse_dataset_ignores_unannotated_voxels_and_never_predicts_ignore(folders):
    dataset = "Dataset062_Sparse"
    raw = make_sparse_task(folders / "raw" / dataset, n_cases=5, shape=SHAPE, seed=2, n_test=2, every=3)
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(raw / "labelsTr" / "case_000.nii.gz")))
    assert (label == 3).mean() > 0.6  # most voxels are unannotated
    out, log = plan_train_predict(folders, dataset, "62")
    plans = json.loads((folders / "pre" / dataset / "segforgePlans.json").read_text())
    assert plans["labels"]["ignore"] == 3 and plans["regions"] is None
    assert any("loss dc_ce" in line for line in log)
    fold = next((folders / "results" / dataset).rglob("fold_0"))
    assert load_model(fold / "checkpoint_final.pt").num_classes == 3  # labels 0, 1, 2: no ignore channel
    for case in ("case_005", "case_006"):
        seg = check_geometry(out / f"{case}.nii.gz", raw / "imagesTs" / f"{case}_0000.nii.gz")
        assert set(np.unique(seg).tolist()) <= {0, 1, 2}
    summary = json.loads((fold / "validation" / "summary.json").read_text())
    assert summary["labels"] == [1, 2]  # the ignore label is not scored
    case = summary["metric_per_case"][0]
    ref = sitk.GetArrayFromImage(sitk.ReadImage(case["reference_file"]))
    counts = case["metrics"]["1"]
    assert counts["tp"] + counts["fp"] + counts["fn"] + counts["tn"] == int((ref != 3).sum())
