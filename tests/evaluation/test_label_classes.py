"""Metrics for region-based datasets and with an ignore label: hand-computed values."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from segforge.evaluation.evaluate_folder import evaluate_folder
from segforge.evaluation.label_classes import class_scores, plain_classes

REF = np.array([[0, 1, 1, 2, 2, 3, 3, 3]])  # 3 = ignore
PRED = np.array([[1, 1, 0, 2, 1, 2, 2, 1]])


def test_ignored_reference_voxels_count_nowhere():
    scores = class_scores(REF, PRED, plain_classes([1, 2]), (1.0, 1.0), ignore_label=3, distances=False)
    one, two = scores[1], scores[2]
    # annotated voxels 0..4: label 1 ref {1,2} pred {0,1,4} -> tp 1, fp 2, fn 1; label 2 ref {3,4} pred {3}
    assert (one.tp, one.fp, one.fn, one.tn) == (1, 2, 1, 1)
    assert one.dice == pytest.approx(2 / 5)
    assert (two.tp, two.fp, two.fn, two.tn) == (1, 0, 1, 3)
    assert two.dice == pytest.approx(2 / 3)
    unmasked = class_scores(REF, PRED, plain_classes([1, 2]), (1.0, 1.0), distances=False)
    assert (unmasked[2].fp, unmasked[1].fp) == (2, 3)  # the predictions inside ignored voxels would count


def test_regions_score_the_union_of_their_labels():
    ref = np.array([[0, 1, 2, 3, 3, 2]])
    pred = np.array([[1, 1, 3, 3, 2, 0]])
    scores = class_scores(ref, pred, {1: (1, 2, 3), 3: (3,)}, (1.0, 1.0), distances=False)
    # whole (1,2,3): ref {1..5}, pred {0..4} -> tp 4, fp 1, fn 1; enhancing (3): ref {3,4}, pred {2,3}
    assert (scores[1].tp, scores[1].fp, scores[1].fn) == (4, 1, 1) and scores[1].dice == pytest.approx(0.8)
    assert (scores[3].tp, scores[3].fp, scores[3].fn) == (1, 1, 1) and scores[3].dice == pytest.approx(0.5)


def _write(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(array.astype(np.uint8)), str(path))


def test_evaluate_folder_records_regions_and_ignore_label(tmp_path):
    _write(tmp_path / "ref" / "a.nii.gz", REF[None])
    _write(tmp_path / "pred" / "a.nii.gz", PRED[None])
    out = tmp_path / "summary.json"
    summary = evaluate_folder(tmp_path / "ref", tmp_path / "pred", [1, 2], output_file=out,
                              regions={1: (1, 2), 2: (2,)}, ignore_label=3)  # fmt: skip
    saved = json.loads(out.read_text())
    assert saved["regions"] == {"1": [1, 2], "2": [2]} and saved["ignore_label"] == 3
    # region (1,2) on annotated voxels 0..4: ref {1,2,3,4}, pred {0,1,3,4} -> tp 3, fp 1, fn 1
    assert summary.mean["1"]["dice"] == pytest.approx(6 / 8)
    assert summary.metric_per_case[0].metrics["2"].tp == 1


def test_evaluate_cli_reads_regions_and_ignore_from_dataset_json(tmp_path, capsys):
    from segforge.cli.app import main

    _write(tmp_path / "ref" / "a.nii.gz", REF[None])
    _write(tmp_path / "pred" / "a.nii.gz", PRED[None])
    dj = tmp_path / "dataset.json"
    labels = {"background": 0, "whole": [1, 2], "core": [2], "ignore": 3}
    dj.write_text(json.dumps({"channel_names": {"0": "MR"}, "labels": labels, "numTraining": 1,
                              "regions_class_order": [1, 2]}))  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--ref", str(tmp_path / "ref"), "--pred", str(tmp_path / "pred"), "--dataset-json", str(dj),
              "--json"])  # fmt: skip
    assert exit_info.value.code in (0, None)
    summary = json.loads(capsys.readouterr().out)
    assert summary["labels"] == [1, 2] and summary["ignore_label"] == 3
    assert summary["mean"]["1"]["dice"] == pytest.approx(6 / 8)
