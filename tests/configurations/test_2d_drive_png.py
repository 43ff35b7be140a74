"""An nnU-Net v2 raw dataset in PNG (real DRIVE crops, RGB in one file per case) through the whole pipeline.

Planning, preprocessing, 2d training, validation, prediction to PNG (also from JPEG input) and
evaluation of the PNG predictions, as the dataset is, with no conversion to NIfTI.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segforge.testing.cli import run_segforge as cli  # segforge ARGS in this process -> exit code

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from drive_png import DATASET, write_png_dataset  # noqa: E402
from segforge_tiny_task import shrink_network  # noqa: E402

RUN = Path(DATASET) / "2d" / "default__generic_unet__segforgePlans"


def _folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var, sub in (("SEGFORGE_RAW", "raw"), ("SEGFORGE_PREPROCESSED", "pre"), ("SEGFORGE_RESULTS", "results")):
        monkeypatch.setenv(var, str(tmp_path / sub))


@pytest.mark.slow
def test_png_dataset_plans_trains_predicts_and_evaluates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _folders(tmp_path, monkeypatch)
    task, tests = write_png_dataset(tmp_path / "raw")
    assert cli("plan-and-preprocess", "--task", "42", "-np", "1", "-c", "2d", "--verify-dataset-integrity") == 0
    fingerprint = json.loads((tmp_path / "pre" / DATASET / "fingerprint.json").read_text())
    assert fingerprint["image_io"] == "natural2d" and len(fingerprint["channel_names"]) == 3
    assert {tuple(c["spacing"]) for c in fingerprint["cases"]} == {(999.0, 1.0, 1.0)}
    plans_file = tmp_path / "pre" / DATASET / "segforgePlans.json"
    plans = json.loads(plans_file.read_text())
    conf = plans["configurations"]["2d"]
    assert plans["image_io"] == "natural2d" and len(conf["patch_size"]) == 2 and len(conf["normalization"]) == 3
    shrink_network(plans_file, [4, 8, 16, 32, 32, 32, 32])
    assert cli("train", "--task", "42", "--fold", "0", "--config", "2d", "--epochs", "1", "--iterations-per-epoch",
               "2", "--set", "val_iterations=1", "--set", "threads=1") == 0  # fmt: skip
    validation = tmp_path / "results" / RUN / "fold_0" / "validation"
    assert sorted(p.suffix for p in validation.iterdir() if p.name != "summary.json") == [".png"]

    out = tmp_path / "out"
    assert cli("predict", "-i", str(task / "imagesTs"), "-o", str(out), "--task", "42", "--config", "2d",
               "-f", "0", "--sequential", "--device", "cpu") == 0  # fmt: skip
    for case in tests:
        pred = Image.open(out / f"{case}.png")
        assert pred.mode == "L" and pred.size == (96, 96)
        assert set(np.unique(np.asarray(pred)).tolist()) <= {0, 1}
    assert cli("evaluate", "--ref", str(task / "labelsTs"), "--pred", str(out), "--labels", "1") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [c["case_id"] for c in summary["metric_per_case"]] == tests
    assert 0.0 <= summary["mean"]["1"]["dice"] <= 1.0

    jpeg_in = tmp_path / "jpeg_in"
    jpeg_in.mkdir()
    Image.open(task / "imagesTs" / f"{tests[0]}_0000.png").save(jpeg_in / f"{tests[0]}_0000.jpg", quality=95)
    assert cli("predict", "-i", str(jpeg_in), "-o", str(tmp_path / "jpeg_out"), "--task", "42", "--config", "2d",
               "-f", "0", "--sequential", "--device", "cpu") == 0  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "jpeg_out").iterdir() if p.suffix != ".json") == [f"{tests[0]}.png"]


def test_png_masks_holding_0_255_are_refused_naming_the_file(tmp_path, monkeypatch, capsys) -> None:
    _folders(tmp_path, monkeypatch)
    task, _ = write_png_dataset(tmp_path / "raw", n_train=2, n_test=0, size=48, map_labels=False)
    assert cli("plan-and-preprocess", "--task", "42", "-np", "1", "-c", "2d") != 0
    err = capsys.readouterr().err
    assert "labelsTr/drive_21.png: label value(s) 255 not declared in dataset.json" in err
    assert "255 -> 1" in err and "Traceback" not in err
    assert not (tmp_path / "pre" / DATASET / "segforgePlans.json").exists()


def test_rgb_dataset_has_one_file_per_case_and_verifies(tmp_path, monkeypatch) -> None:
    from segforge.io.layouts import open_raw_dataset
    from segforge.io.verify import verify_dataset

    task, _ = write_png_dataset(tmp_path / "raw", n_train=2, n_test=1, size=32)
    ds = open_raw_dataset(task)
    assert ds.num_channels == 3 and [len(c.images) for c in ds.cases + ds.test_cases] == [1, 1, 1]
    report = verify_dataset(ds, num_processes=1)
    assert report.ok, [p.line() for p in report.errors]
    info = json.loads((task / "dataset.json").read_text())
    info["channel_names"]["3"] = "NIR"
    (task / "dataset.json").write_text(json.dumps(info))
    report = verify_dataset(open_raw_dataset(task), num_processes=1)
    assert "imagesTr/drive_21_0000.png: case 'drive_21': its 1 file(s) hold 3 channel(s), dataset.json names 4" in [
        p.line() for p in report.errors
    ]
