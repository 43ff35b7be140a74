"""Target spacing (with nnU-Net's anisotropy rule), transposition and resampled median shapes."""

from __future__ import annotations

import numpy as np
import pytest

from segforge.planning.spacing import median_shape_at_spacing, shape_at_spacing, target_spacing, transpose_axes


def test_target_spacing_is_the_median_per_axis():
    spacings = [[1.0, 0.5, 0.5], [2.0, 0.7, 0.7], [1.5, 0.6, 0.8]]
    shapes = [[100, 200, 200]] * 3
    np.testing.assert_allclose(target_spacing(spacings, shapes), [1.5, 0.6, 0.7])


def test_anisotropic_axis_with_few_voxels_takes_the_10th_percentile():
    # median z spacing 6.0 > 3 * 0.7 and 20 * 3 < 256 voxels: nnU-Net uses the 10th percentile (5.0)
    spacings = [[5.0 + 0.5 * (i % 5), 0.7, 0.7] for i in range(20)]
    shapes = [[20, 256, 256]] * 20
    np.testing.assert_allclose(target_spacing(spacings, shapes), [5.0, 0.7, 0.7])


def test_anisotropic_spacing_with_many_voxels_keeps_the_median():
    spacings = [[5.0 + 0.5 * (i % 5), 0.7, 0.7] for i in range(20)]
    shapes = [[200, 256, 256]] * 20  # 200 * 3 > 256: not few voxels along z
    np.testing.assert_allclose(target_spacing(spacings, shapes), [6.0, 0.7, 0.7])


def test_anisotropic_percentile_never_drops_below_the_other_axes():
    spacings = [[0.5, 0.6, 0.6]] * 3 + [[8.0, 0.6, 0.6]] * 7
    shapes = [[10, 300, 300]] * 10
    target = target_spacing(spacings, shapes)
    assert target[0] == pytest.approx(0.6 + 1e-5)
    assert list(target[1:]) == [0.6, 0.6]


@pytest.mark.parametrize(
    ("spacing", "forward", "backward"),
    [
        ([1.0, 1.0, 1.0], [0, 1, 2], [0, 1, 2]),
        ([3.0, 0.8, 0.8], [0, 1, 2], [0, 1, 2]),
        ([0.8, 0.8, 3.0], [2, 0, 1], [1, 2, 0]),
        ([0.8, 4.0, 0.8], [1, 0, 2], [1, 0, 2]),
    ],
)
def test_transpose_puts_the_coarsest_axis_first(spacing, forward, backward):
    assert transpose_axes(spacing) == (forward, backward)
    assert list(np.asarray(spacing)[forward][np.asarray(backward)]) == spacing


def test_suppressed_transpose_is_the_identity():
    assert transpose_axes([0.8, 0.8, 3.0], suppress=True) == ([0, 1, 2], [0, 1, 2])


def test_shapes_at_target_spacing_are_rounded_and_their_median_taken():
    assert shape_at_spacing([10, 100, 100], [5.0, 1.0, 1.0], [2.5, 0.8, 0.8]) == [20, 125, 125]
    median = median_shape_at_spacing([[1, 1, 1], [2, 1, 1]], [[10, 10, 10], [10, 11, 12]], [1, 1, 1])
    np.testing.assert_allclose(median, [15, 10.5, 11])
