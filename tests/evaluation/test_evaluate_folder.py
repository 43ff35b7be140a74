"""Evaluating folders: pairing, means with NaN left out, 2D images, parallel == serial, summary.json."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from segforge.config.jsonio import load_model
from segforge.errors import UsageError
from segforge.evaluation.evaluate_folder import EvaluationSummary, evaluate_folder, pair_files


def write(path: Path, array: np.ndarray, spacing) -> None:
    image = sitk.GetImageFromArray(array.astype(np.uint8))
    image.SetSpacing([float(s) for s in spacing[::-1]])
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path), True)


def test_absent_label_is_left_out_of_the_mean(tmp_path):
    ref = np.zeros((3, 5, 5))
    ref[1, 1:3, 1:3] = 1
    write(tmp_path / "ref" / "a.nii.gz", ref, (1, 1, 1))
    write(tmp_path / "pred" / "a.nii.gz", ref, (1, 1, 1))
    write(tmp_path / "ref" / "b.nii.gz", np.zeros((3, 5, 5)), (1, 1, 1))  # label 1 absent in both
    write(tmp_path / "pred" / "b.nii.gz", np.zeros((3, 5, 5)), (1, 1, 1))
    summary = evaluate_folder(tmp_path / "ref", tmp_path / "pred", [1], output_file=tmp_path / "summary.json")
    assert summary.metric_per_case[1].metrics["1"].dice is None
    assert summary.mean["1"]["dice"] == 1.0 and summary.mean["1"]["hd95"] == 0.0
    text = (tmp_path / "summary.json").read_text()
    assert ": NaN" not in text and json.loads(text)["metric_per_case"][1]["metrics"]["1"]["hd95"] is None
    assert load_model(tmp_path / "summary.json", EvaluationSummary) == summary


def test_2d_images_use_in_plane_surfaces_and_spacing(tmp_path):
    ref, pred = np.zeros((1, 8, 8)), np.zeros((1, 8, 8))
    ref[0, 2:6, 2:6] = 1
    pred[0, 2:6, 3:7] = 1  # shifted one column (0.5 mm)
    for folder, arr in (("ref", ref), ("pred", pred)):
        image = sitk.GetImageFromArray(arr[0].astype(np.uint8))  # a real 2D file
        image.SetSpacing((0.5, 2.0))
        (tmp_path / folder).mkdir()
        sitk.WriteImage(image, str(tmp_path / folder / "a.nii.gz"))
    summary = evaluate_folder(tmp_path / "ref", tmp_path / "pred", [1])
    m = summary.metric_per_case[0].metrics["1"]
    assert m.dice == pytest.approx(2 * 12 / 32)
    assert m.hd95 == pytest.approx(0.5)  # surfaces one 0.5 mm column apart; a 3D view would see only 1-voxel slabs


def test_parallel_equals_serial(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(3):
        write(tmp_path / "ref" / f"c{i}.nii.gz", rng.integers(0, 3, (4, 6, 6)), (2.0, 1.0, 1.0))
        write(tmp_path / "pred" / f"c{i}.nii.gz", rng.integers(0, 3, (4, 6, 6)), (2.0, 1.0, 1.0))
    serial = evaluate_folder(tmp_path / "ref", tmp_path / "pred", [1, 2], num_processes=1)
    parallel = evaluate_folder(tmp_path / "ref", tmp_path / "pred", [1, 2], num_processes=2)
    assert serial == parallel
    dice = [c.metrics["2"].dice for c in serial.metric_per_case]
    assert serial.mean["2"]["dice"] == pytest.approx(sum(dice) / 3)
    fg = (serial.mean["1"]["dice"] + serial.mean["2"]["dice"]) / 2
    assert serial.foreground_mean["dice"] == pytest.approx(fg)
    assert not math.isnan(serial.mean["1"]["hd95"])


def test_pairing_ignores_hidden_files_and_needs_folders(tmp_path):
    write(tmp_path / "ref" / "a.nii.gz", np.zeros((2, 2, 2)), (1, 1, 1))
    (tmp_path / "ref" / ".a.nii.gz.123.tmp.nii.gz").write_bytes(b"")
    write(tmp_path / "pred" / "a.nii.gz", np.zeros((2, 2, 2)), (1, 1, 1))
    pairs = pair_files(tmp_path / "ref", tmp_path / "pred", (".nii.gz",))
    assert [(cid, r.name, p.name) for cid, r, p in pairs] == [("a", "a.nii.gz", "a.nii.gz")]
    with pytest.raises(UsageError, match="prediction folder .* does not exist"):
        pair_files(tmp_path / "ref", tmp_path / "nope", (".nii.gz",))
