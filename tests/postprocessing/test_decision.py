"""The postprocessing decision on synthetic predictions: where the LCC helps, where it hurts, per class."""

from __future__ import annotations

import math

import numpy as np
import pytest

from segforge.config.jsonio import load_model, save_model
from segforge.postprocessing.decision import (
    PostprocessingDecision,
    apply_postprocessing,
    determine_from_arrays,
    determine_from_files,
)

SHAPE = (5, 10, 10)
A = (slice(1, 4), slice(1, 4), slice(1, 4))  # 27 voxels
B = (slice(1, 3), slice(7, 9), slice(7, 9))  # 8 voxels, apart from A
C = (slice(1, 3), slice(4, 6), slice(1, 3))  # 8 voxels, face-touching A
D = (4, 9, 0)  # 1 voxel, apart from everything


def _seg(**blocks) -> np.ndarray:
    seg = np.zeros(SHAPE, dtype=np.uint8)
    for label, where in blocks.values():
        seg[where] = label
    return seg


def test_lcc_helps_when_the_prediction_has_a_spurious_blob():
    ref = _seg(a=(1, A))
    pred = _seg(a=(1, A), b=(1, B))
    decision = determine_from_arrays([(ref, pred)], [1, 2])
    assert decision.foreground_lcc is True
    assert decision.foreground_dice_before == pytest.approx(54 / 62)
    assert decision.foreground_dice_with_lcc == pytest.approx(1.0)
    assert decision.dice_before == {"1": pytest.approx(54 / 62), "2": None}  # label 2 empty in both: undefined
    assert decision.dice_after == {"1": pytest.approx(1.0), "2": None}
    rule_2 = decision.per_class[1]
    assert rule_2.label == 2 and rule_2.applied is False and rule_2.dice_with is None


def test_lcc_hurts_when_the_reference_has_two_components():
    ref = _seg(a=(1, A), b=(1, B))
    decision = determine_from_arrays([(ref, ref.copy())], [1, 2])
    assert decision.foreground_lcc is False
    assert decision.foreground_dice_with_lcc == pytest.approx(54 / 62)
    assert decision.per_class[0].applied is False
    assert decision.dice_after["1"] == pytest.approx(1.0)
    assert "no rule applies" == decision.describe()


def test_per_class_decision_is_made_on_its_own_class():
    """Foreground LCC would drop class 1's second blob (hurts); class 2's LCC only drops a stray voxel (helps)."""
    ref = _seg(a=(1, A), b=(1, B), c=(2, C))
    pred = ref.copy()
    pred[D] = 2
    decision = determine_from_arrays([(ref, pred)], [1, 2])
    assert decision.foreground_lcc is False
    assert decision.foreground_dice_before == pytest.approx((1 + 16 / 17) / 2)
    assert decision.foreground_dice_with_lcc == pytest.approx((54 / 62 + 1) / 2)
    rules = {r.label: r for r in decision.per_class}
    assert rules[1].applied is False and rules[1].dice_with == pytest.approx(54 / 62)
    assert rules[2].applied is True and rules[2].dice_without == pytest.approx(16 / 17)
    assert decision.dice_after == {"1": pytest.approx(1.0), "2": pytest.approx(1.0)}
    assert decision.describe() == "keep largest component of label 2"
    out = apply_postprocessing(pred, decision)
    assert np.array_equal(out, ref)


def test_means_are_over_cases_and_skip_undefined_cases():
    ref_good = _seg(a=(1, A))
    cases = [(ref_good, _seg(a=(1, A), b=(1, B))), (np.zeros(SHAPE, np.uint8), np.zeros(SHAPE, np.uint8))]
    decision = determine_from_arrays(cases, [1])
    assert decision.num_cases == 2 and decision.per_class == []  # one label: the foreground step decides it
    assert decision.dice_before["1"] == pytest.approx(54 / 62)


def test_apply_foreground_then_class_rules():
    decision = PostprocessingDecision(
        labels=[1, 2], foreground_lcc=True, foreground_dice_before=None, foreground_dice_with_lcc=None,
        dice_before={}, dice_after={}, num_cases=0,
    )  # fmt: skip
    pred = _seg(a=(1, A), c=(2, C))
    pred[D] = 1
    out = apply_postprocessing(pred, decision)
    assert out[D] == 0 and int((out == 1).sum()) == 27 and int((out == 2).sum()) == 8


def test_json_round_trip(tmp_path):
    ref = _seg(a=(1, A))
    decision = determine_from_arrays([(ref, _seg(a=(1, A), b=(1, B)))], [1, 2], source="somewhere")
    save_model(tmp_path / "postprocessing.json", decision)
    loaded = load_model(tmp_path / "postprocessing.json", PostprocessingDecision)
    assert loaded == decision and loaded.source == "somewhere"
    text = (tmp_path / "postprocessing.json").read_text()
    assert '"foreground_lcc": true' in text and "NaN" not in text


def test_determine_from_files_reads_nifti(tmp_path):
    from segforge.io.image_io import ImageProperties, SimpleITKIO

    io = SimpleITKIO()
    props = ImageProperties(spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0), direction=(1.0, 0, 0, 0, 1, 0, 0, 0, 1),
                            shape=SHAPE, itk_spacing=(1.0, 1.0, 1.0))  # fmt: skip
    io.write_seg(_seg(a=(1, A)), tmp_path / "ref.nii.gz", props)
    io.write_seg(_seg(a=(1, A), b=(1, B)), tmp_path / "pred.nii.gz", props)
    decision = determine_from_files([(tmp_path / "ref.nii.gz", tmp_path / "pred.nii.gz")], [1], io)
    assert decision.foreground_lcc is True and math.isclose(decision.dice_after["1"], 1.0)


def test_a_tie_keeps_the_raw_prediction():
    """One component everywhere: the LCC changes nothing, so no rule is applied (nnU-Net v2 wants a strict gain)."""
    ref = _seg(a=(1, A), c=(2, C))
    decision = determine_from_arrays([(ref, ref.copy())], [1, 2])
    assert decision.foreground_lcc is False
    assert [rule.applied for rule in decision.per_class] == [False, False]


def test_foreground_step_is_refused_when_it_lowers_one_class():
    """The foreground LCC raises the mean (class 1 loses a spurious blob) but costs class 2 a true detached voxel."""
    ref = _seg(a=(1, A), c=(2, C))
    ref[D] = 2
    pred = ref.copy()
    pred[B] = 1  # spurious class-1 blob
    decision = determine_from_arrays([(ref, pred)], [1, 2])
    before = (54 / 62 + 1.0) / 2
    after = (1.0 + 16 / 17) / 2
    assert decision.foreground_dice_before == pytest.approx(before)
    assert decision.foreground_dice_with_lcc == pytest.approx(after) and after > before
    assert decision.foreground_lcc is False  # class 2 got worse: nnU-Net v2 refuses the step
    assert decision.per_class[0].applied is True  # class 1's own LCC drops only the spurious blob
    assert decision.per_class[1].applied is False
