"""Metrics against values computed by hand on small arrays (empty masks, anisotropic spacing)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from segforge.evaluation.metrics import case_scores, label_scores, nanmean, surface, surface_distances


def test_overlap_metrics_hand_values():
    ref = np.array([[1, 1, 1, 0, 0, 0]], dtype=bool)
    pred = np.array([[0, 1, 1, 1, 1, 0]], dtype=bool)
    s = label_scores(ref, pred, (1.0, 1.0))
    assert (s.tp, s.fp, s.fn, s.tn, s.n_ref, s.n_pred) == (2, 2, 1, 1, 3, 4)
    assert s.dice == pytest.approx(4 / 7)
    assert s.iou == pytest.approx(2 / 5)
    assert s.precision == pytest.approx(1 / 2)
    assert s.recall == pytest.approx(2 / 3)


def test_both_empty_is_nan_everywhere():
    empty = np.zeros((4, 5, 6), dtype=bool)
    s = label_scores(empty, empty, (1.0, 1.0, 1.0))
    assert all(math.isnan(v) for v in (s.dice, s.iou, s.precision, s.recall, s.hd95, s.assd))
    assert s.tn == 120


def test_one_side_empty_scores_zero_overlap_and_the_image_diagonal():
    ref = np.zeros((4, 5, 6), dtype=bool)
    pred = ref.copy()
    pred[1, 1, 1] = True
    diagonal = math.sqrt((4 * 2.0) ** 2 + (5 * 0.5) ** 2 + (6 * 0.5) ** 2)
    false_positive = label_scores(ref, pred, (2.0, 0.5, 0.5))
    assert false_positive.dice == 0 and false_positive.precision == 0 and math.isnan(false_positive.recall)
    assert false_positive.hd95 == pytest.approx(diagonal) and false_positive.assd == pytest.approx(diagonal)
    missed = label_scores(pred, ref, (2.0, 0.5, 0.5))
    assert missed.dice == 0 and missed.recall == 0 and math.isnan(missed.precision)
    assert missed.hd95 == pytest.approx(diagonal)


def test_surface_distances_use_anisotropic_spacing():
    ref = np.zeros((8, 4, 4), dtype=bool)
    pred = ref.copy()
    ref[2] = True  # two parallel planes two slices apart
    pred[4] = True
    s = label_scores(ref, pred, (2.5, 0.7, 0.7))
    assert s.hd95 == pytest.approx(5.0) and s.assd == pytest.approx(5.0)  # 2 slices x 2.5 mm
    s = label_scores(ref, pred, (1.0, 0.7, 0.7))
    assert s.hd95 == pytest.approx(2.0)


def test_hd95_and_assd_hand_values_with_unequal_directions():
    sy, sx = 0.5, 2.0
    ref = np.zeros((10, 10), dtype=bool)
    pred = ref.copy()
    ref[:, 0] = True  # a column: every voxel is a surface voxel
    pred[0, 3] = True  # one voxel, 3 columns away from the column's top
    d_pred = [3 * sx]  # pred -> nearest ref voxel (0, 0)
    d_ref = [math.hypot(r * sy, 3 * sx) for r in range(10)]  # each ref voxel -> the single pred voxel
    # numpy's linear percentile of the 10 sorted distances: index 0.95 * 9 = 8.55
    expected_p95_ref = d_ref[8] + 0.55 * (d_ref[9] - d_ref[8])
    s = label_scores(ref, pred, (sy, sx))
    assert s.hd95 == pytest.approx(max(d_pred[0], expected_p95_ref))
    assert s.assd == pytest.approx((sum(d_pred) + sum(d_ref)) / 11)


def test_identical_masks_have_zero_distance_and_dice_one():
    mask = np.zeros((6, 7, 8), dtype=bool)
    mask[1:5, 2:6, 3:7] = True
    s = label_scores(mask, mask, (3.0, 1.0, 1.0))
    assert s.dice == 1 and s.iou == 1 and s.hd95 == 0 and s.assd == 0


def test_surface_of_a_cube_and_at_the_image_border():
    cube = np.zeros((5, 5, 5), dtype=bool)
    cube[1:4, 1:4, 1:4] = True
    assert surface(cube).sum() == 26  # all but the centre voxel
    full = np.ones((3, 3, 3), dtype=bool)
    assert surface(full).sum() == 26  # the border of the image counts as background


def test_cropping_to_the_union_box_gives_the_full_image_distances():
    rng = np.random.default_rng(3)
    ref = ndimage.binary_dilation(rng.random((20, 24, 22)) > 0.995, iterations=2)
    pred = ndimage.binary_dilation(rng.random((20, 24, 22)) > 0.995, iterations=2)
    spacing = (2.0, 0.8, 1.1)
    d_pred, d_ref = surface_distances(ref, pred, spacing)
    full_to_ref = ndimage.distance_transform_edt(~surface(ref), sampling=spacing)
    full_to_pred = ndimage.distance_transform_edt(~surface(pred), sampling=spacing)
    np.testing.assert_allclose(np.sort(d_pred), np.sort(full_to_ref[surface(pred)]))
    np.testing.assert_allclose(np.sort(d_ref), np.sort(full_to_pred[surface(ref)]))


def test_case_scores_per_label_and_nanmean():
    ref = np.array([[0, 1, 1, 2]])
    pred = np.array([[0, 1, 2, 2]])
    scores = case_scores(ref, pred, [1, 2, 3], (1.0, 1.0))
    assert scores[1].dice == pytest.approx(2 / 3) and scores[2].dice == pytest.approx(2 / 3)
    assert math.isnan(scores[3].dice)
    assert nanmean([scores[1].dice, scores[3].dice]) == pytest.approx(2 / 3)
    assert math.isnan(nanmean([float("nan")]))
