"""``segforge predict`` and ``segforge evaluate`` end to end through the CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inference"))
from inference_helpers import make_plans, write_checkpoint  # noqa: E402

from segforge.testing.synthetic import make_task  # noqa: E402

RUN = Path("Task099_Test") / "3d_fullres" / "default__generic_unet__segforgePlans"


def read(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


@pytest.fixture
def trained(tmp_path, monkeypatch):
    """A results folder with a 2-fold tiny model and a folder of 3 raw test cases."""
    results = tmp_path / "results"
    monkeypatch.setenv("SEGFORGE_RESULTS", str(results))
    plans = make_plans((2.0, 1.0, 1.5))
    write_checkpoint(results / RUN / "fold_0", plans, seed=0)
    write_checkpoint(results / RUN / "fold_1", plans, seed=1)
    task = make_task(tmp_path / "raw" / "Task099_Test", n_cases=0, n_test=3, shape=(12, 16, 14))
    return results, task / "imagesTs"


def test_predict_by_task_writes_every_case_in_the_input_geometry(cli, trained, tmp_path):
    _, images = trained
    run = cli("predict", "-i", str(images), "-o", str(tmp_path / "out"), "--task", "99", "-f", "0", "1",
              "--checkpoint", "final", "--sequential")  # fmt: skip
    assert run.exit_code == 0, run.stderr
    for cid in ("case_000", "case_001", "case_002"):
        out, raw = (
            sitk.ReadImage(str(tmp_path / "out" / f"{cid}.nii.gz")),
            sitk.ReadImage(str(images / f"{cid}_0000.nii.gz")),
        )
        assert out.GetSize() == raw.GetSize() and out.GetOrigin() == raw.GetOrigin()
        assert np.allclose(out.GetSpacing(), raw.GetSpacing())
        assert set(np.unique(sitk.GetArrayFromImage(out))) <= {0, 1, 2}
    assert "case_002" in run.stdout and "predict s" in run.stdout  # the summary table on stdout
    assert "2 fold(s)" in run.stderr


def test_shards_write_disjoint_files_whose_union_is_everything(cli, trained, tmp_path):
    results, images = trained
    full = cli("predict", "-i", str(images), "-o", str(tmp_path / "full"), "-m", str(results / RUN / "fold_0"),
               "--no-tta", "--sequential")  # fmt: skip
    assert full.exit_code == 0, full.stderr
    names = []
    for part in (0, 1):
        run = cli("predict", "-i", str(images), "-o", str(tmp_path / "shards"), "-m", str(results / RUN / "fold_0"),
                  "--no-tta", "--part-id", str(part), "--num-parts", "2", "--sequential")  # fmt: skip
        assert run.exit_code == 0, run.stderr
        names.append(sorted(p.name for p in (tmp_path / "shards").glob("*.nii.gz") if p.name not in sum(names, [])))
    assert names == [["case_000.nii.gz", "case_002.nii.gz"], ["case_001.nii.gz"]]
    for name in sum(names, []):
        np.testing.assert_array_equal(read(tmp_path / "shards" / name), read(tmp_path / "full" / name))


def test_continue_skips_existing_outputs(cli, trained, tmp_path):
    results, images = trained
    args = ("predict", "-i", str(images), "-o", str(tmp_path / "out"), "-m", str(results / RUN), "-f", "0",
            "--no-tta", "--sequential")  # fmt: skip
    assert cli(*args).exit_code == 0
    (tmp_path / "out" / "case_001.nii.gz").unlink()
    stamp = (tmp_path / "out" / "case_000.nii.gz").stat().st_mtime_ns
    run = cli(*args, "--continue")
    assert run.exit_code == 0, run.stderr
    assert "1 case(s) to predict, 2 skipped" in run.stderr
    assert (tmp_path / "out" / "case_001.nii.gz").is_file()
    assert (tmp_path / "out" / "case_000.nii.gz").stat().st_mtime_ns == stamp


def test_overlapped_cli_run_with_probabilities(cli, trained, tmp_path):
    results, images = trained
    run = cli("predict", "-i", str(images), "-o", str(tmp_path / "out"), "-m", str(results / RUN), "-f", "0",
              "--no-tta", "--save-probabilities", "-chk", "model_final_checkpoint", "--overlap")  # fmt: skip
    assert run.exit_code == 0, run.stderr
    with np.load(tmp_path / "out" / "case_001.npz", allow_pickle=False) as data:
        probs = data["probabilities"]
    sidecar = json.loads((tmp_path / "out" / "case_001.json").read_text())
    assert probs.shape == (3, 12, 16, 14) and sidecar["labels"] == [0, 1, 2]
    np.testing.assert_allclose(probs.astype(np.float32).sum(0), 1.0, atol=3e-3)
    # float16 probabilities can tie where the float32 logits did not (an untrained net has small margins)
    assert (probs.argmax(0) == read(tmp_path / "out" / "case_001.nii.gz")).mean() > 0.99


def test_compile_without_a_compiler_warns_in_one_line_and_predicts_eagerly(cli, trained, tmp_path, monkeypatch):
    import torch

    results, images = trained
    args = ("predict", "-i", str(images), "-m", str(results / RUN), "-f", "0", "--no-tta", "--sequential")
    assert cli(*args, "-o", str(tmp_path / "eager")).exit_code == 0

    def unavailable(x):
        raise RuntimeError("inductor: C++ compiler not found")

    monkeypatch.setattr(torch, "compile", lambda net, **kwargs: unavailable)
    run = cli(*args, "-o", str(tmp_path / "compiled"), "--compile")
    assert run.exit_code == 0, run.stderr
    lines = [line for line in run.stderr.splitlines() if "could not compile" in line]
    assert lines == ["warning: could not compile the network (RuntimeError: inductor: C++ compiler not found); "
                     "predicting without --compile"]  # fmt: skip
    assert "Traceback" not in run.stderr and "CompileFallbackWarning" not in run.stderr
    for cid in ("case_000", "case_001", "case_002"):
        np.testing.assert_array_equal(read(tmp_path / "compiled" / f"{cid}.nii.gz"),
                                      read(tmp_path / "eager" / f"{cid}.nii.gz"))  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message", "hint"),
    [
        (("--task", "7"), "no trained model for task 7", "train it first"),
        (("--task", "99", "--checkpoint", "best"), "checkpoint_best.pt not found", "choose another --checkpoint"),
        (("--task", "99", "-f", "4"), "fold_4 not found (present: fold_0, fold_1)", "--folds"),
        (("--task", "99", "--step-size", "1.5"), "step size must be in (0, 1]", "0.5"),
        (("--task", "99", "--network", "residual_unet"), "matches --network residual_unet (trained here", "--network"),
        ((), "pass --task N (or -m MODEL_DIR)", "segforge predict -i"),
    ],
)
def test_predict_errors_are_one_line_with_a_hint(cli, trained, tmp_path, args, message, hint):
    _, images = trained
    run = cli("predict", "-i", str(images), "-o", str(tmp_path / "out"), *args)
    assert run.exit_code == 2
    error = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and message in error[0], run.stderr
    assert hint in run.stderr


def test_missing_channel_names_the_case_and_file(cli, trained, tmp_path):
    _, images = trained
    (images / "case_001_0000.nii.gz").rename(images / "case_001_0001.nii.gz")
    run = cli("predict", "-i", str(images), "-o", str(tmp_path / "out"), "--task", "99")
    assert run.exit_code == 2
    assert "case 'case_001'" in run.stderr and "missing channel 0: case_001_0000.nii.gz" in run.stderr


def test_unregistered_plugin_network_says_what_to_install(cli, trained, tmp_path):
    results, images = trained
    spec = {
        "name": "hyper_unet",
        "version": "1",
        "params": {},
        "origin": {"dist": "segforge-hyperunet", "version": "2.0"},
    }
    write_checkpoint(tmp_path / "hyper" / "fold_0", make_plans((2.0, 1.0, 1.5)), network=spec)
    run = cli("predict", "-i", str(images), "-o", str(tmp_path / "out"), "-m", str(tmp_path / "hyper"))
    assert run.exit_code == 2
    assert "network 'hyper_unet' from segforge-hyperunet, which is not installed" in run.stderr
    assert "hint: install segforge-hyperunet" in run.stderr


# -- evaluate ------------------------------------------------------------------------------------
def write_seg(path: Path, array: np.ndarray, spacing=(2.0, 1.0, 1.0)) -> None:
    image = sitk.GetImageFromArray(array.astype(np.uint8))
    image.SetSpacing(spacing[::-1])
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path), True)


@pytest.fixture
def ref_pred(tmp_path):
    ref, pred = np.zeros((4, 6, 6), np.uint8), np.zeros((4, 6, 6), np.uint8)
    ref[1, 1:4, 1:4] = 1  # 9 voxels
    pred[1, 1:4, 1:3] = 1  # 6 of them: Dice 12 / 15
    ref[2, 2:4, 2:4] = 2
    write_seg(tmp_path / "ref" / "a.nii.gz", ref)
    write_seg(tmp_path / "pred" / "a.nii.gz", pred)  # label 2 missed: Dice 0
    write_seg(tmp_path / "ref" / "b.nii.gz", ref)
    write_seg(tmp_path / "pred" / "b.nii.gz", ref)  # perfect
    return tmp_path / "ref", tmp_path / "pred"


def test_evaluate_writes_summary_and_prints_means(cli, ref_pred):
    ref, pred = ref_pred
    run = cli("evaluate", "--ref", str(ref), "--pred", str(pred), "--labels", "1", "2", "-np", "1")
    assert run.exit_code == 0, run.stderr
    summary = json.loads((pred / "summary.json").read_text())
    case_a = summary["metric_per_case"][0]
    assert case_a["case_id"] == "a" and case_a["metrics"]["1"]["dice"] == pytest.approx(0.8)
    assert case_a["metrics"]["2"]["dice"] == 0 and case_a["metrics"]["2"]["precision"] is None  # nothing predicted
    assert summary["mean"]["1"]["dice"] == pytest.approx(0.9) and summary["mean"]["2"]["dice"] == pytest.approx(0.5)
    assert summary["foreground_mean"]["dice"] == pytest.approx(0.7)
    assert case_a["metrics"]["2"]["hd95"] == pytest.approx((8**2 + 6**2 + 6**2) ** 0.5)  # one side empty: diagonal
    assert "0.9000" in run.stdout and "mean" in run.stdout


def test_evaluate_json_output(cli, ref_pred, tmp_path):
    ref, pred = ref_pred
    run = cli("evaluate", "--ref", str(ref), "--pred", str(pred), "-l", "1", "--json", "-o", str(tmp_path / "s.json"))
    assert run.exit_code == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["labels"] == [1] and len(data["metric_per_case"]) == 2
    assert json.loads((tmp_path / "s.json").read_text()) == data


def test_evaluate_lists_missing_predictions(cli, ref_pred):
    ref, pred = ref_pred
    (pred / "b.nii.gz").unlink()
    write_seg(ref / "c.nii.gz", np.zeros((4, 6, 6)))
    run = cli("evaluate", "--ref", str(ref), "--pred", str(pred), "--labels", "1")
    assert run.exit_code == 2
    assert "2 of 3 case(s) have no prediction in" in run.stderr and "b.nii.gz, c.nii.gz" in run.stderr


def test_evaluate_geometry_mismatch_names_the_file(cli, ref_pred):
    ref, pred = ref_pred
    write_seg(pred / "b.nii.gz", np.zeros((4, 6, 6)), spacing=(3.0, 1.0, 1.0))
    run = cli("evaluate", "--ref", str(ref), "--pred", str(pred), "--labels", "1", "-np", "1")
    assert run.exit_code == 2
    assert "b.nii.gz: spacing (3, 1, 1) differs from the reference's (2, 1, 1)" in run.stderr


def test_evaluate_needs_labels(cli, ref_pred):
    ref, pred = ref_pred
    run = cli("evaluate", "--ref", str(ref), "--pred", str(pred))
    assert run.exit_code == 2 and "no labels given" in run.stderr


def test_real_training_then_predict_then_evaluate(cli, tmp_path, monkeypatch):
    """convert -> plan-and-preprocess -> a 2-iteration ``segforge train`` -> predict -> evaluate."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
    from segforge_tiny_task import DATASET, TASK, prepare_task

    root = prepare_task(tmp_path / "task")
    for var, sub in (("SEGFORGE_RAW", "raw"), ("SEGFORGE_PREPROCESSED", "pre"), ("SEGFORGE_RESULTS", "results")):
        monkeypatch.setenv(var, str(root / sub))
    run = cli("train", "--task", TASK, "--fold", "0", "--epochs", "1", "--iterations-per-epoch", "2",
              "--set", "val_iterations=2", "--set", "threads=1")  # fmt: skip
    assert run.exit_code == 0, run.stderr
    raw = root / "raw" / DATASET
    run = cli("predict", "-i", str(raw / "imagesTr"), "-o", str(tmp_path / "preds"), "--task", TASK, "-f", "0")
    assert run.exit_code == 0, run.stderr
    run = cli("evaluate", "--ref", str(raw / "labelsTr"), "--pred", str(tmp_path / "preds"), "-l", "1", "2")
    assert run.exit_code == 0, run.stderr
    summary = json.loads((tmp_path / "preds" / "summary.json").read_text())
    assert len(summary["metric_per_case"]) == 6 and set(summary["mean"]) == {"1", "2"}
    for case in summary["metric_per_case"]:
        ref = read(raw / "labelsTr" / f"{case['case_id']}.nii.gz")
        pred = read(tmp_path / "preds" / f"{case['case_id']}.nii.gz")
        assert pred.shape == ref.shape
        assert case["metrics"]["1"]["n_pred"] == int((pred == 1).sum())


def test_constant_tile_reuse_can_be_switched_off_and_changes_no_label(cli, trained, tmp_path):
    import SimpleITK as sitk

    results, images = trained
    base = ("predict", "-i", str(images), "-m", str(results / RUN), "-f", "0", "--no-tta", "--sequential",
            "--precision", "fp32")  # fmt: skip
    on = cli(*base, "-o", str(tmp_path / "on"))
    off = cli(*base, "-o", str(tmp_path / "off"), "--no-reuse-constant-tiles")
    assert on.exit_code == 0 and off.exit_code == 0, on.stderr + off.stderr
    # auto (the default) weighs a compile against the few tile evaluations of these cases: eager torch
    assert "backend torch (auto: torch for ~" in on.stderr and "compiled" in on.stderr
    for file in sorted((tmp_path / "off").glob("*.nii.gz")):
        a = sitk.GetArrayFromImage(sitk.ReadImage(str(file)))
        b = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "on" / file.name)))
        assert (a == b).all(), file.name
