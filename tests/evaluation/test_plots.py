"""Pictures of an evaluation: three orthogonal views per case and the Dice box plot."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.colors import to_rgb
from matplotlib.image import imread
from segforge_eval_cases import SHAPE, case_arrays, write_cases

from segforge.errors import UsageError
from segforge.evaluation.evaluate_folder import evaluate_folder
from segforge.evaluation.plots import (
    BOXPLOT_FIGSIZE,
    CASE_FIGSIZE,
    DPI,
    draw_case,
    draw_dice_boxplot,
    foreground_centre,
    label_color,
    orthogonal_slices,
    slice_aspects,
    write_plots,
)


def pixels_near(png: np.ndarray, color: str, tol: float = 0.06) -> int:
    return int(np.count_nonzero(np.all(np.abs(png[..., :3] - np.array(to_rgb(color))) < tol, axis=-1)))


def colored_pixels(png: np.ndarray) -> int:
    rgb = png[..., :3]
    return int(np.count_nonzero(rgb.max(axis=-1) - rgb.min(axis=-1) > 0.15))


def mid_grey_pixels(png: np.ndarray) -> int:
    rgb = png[..., :3]
    grey = rgb.max(axis=-1) - rgb.min(axis=-1) < 0.02
    return int(np.count_nonzero(grey & (rgb.mean(axis=-1) > 0.1) & (rgb.mean(axis=-1) < 0.9)))


def test_views_cut_through_the_foreground_centre_with_square_millimetres():
    mask = np.zeros(SHAPE, bool)
    mask[4:9, 10:20, 2:7] = True
    assert foreground_centre(mask) == (6, 14, 4)
    assert foreground_centre(np.zeros(SHAPE, bool)) == (10, 15, 12)  # nothing: the volume centre
    assert foreground_centre(mask, np.roll(mask, 10, axis=2)) == (6, 14, 9)  # reference and prediction together
    views = orthogonal_slices(np.arange(np.prod(SHAPE)).reshape(SHAPE), (6, 14, 4))
    assert [v.shape for v in views] == [(30, 24), (20, 24), (20, 30)]
    assert slice_aspects((3.0, 1.0, 0.5)) == [2.0, 6.0, 3.0]


def test_case_png_shows_image_reference_contours_and_prediction_fills(tmp_path):
    image, ref, pred = case_arrays()
    path = draw_case(tmp_path / "case.png", ref, pred, image=image, labels=[1, 2],
                     label_names={1: "Anterior", 2: "Posterior"}, title="case_007 - Dice: Anterior 0.8")  # fmt: skip
    png = imread(path)
    assert png.shape[:2] == (round(CASE_FIGSIZE[1] * DPI), round(CASE_FIGSIZE[0] * DPI))
    assert png[..., :3].std() > 0.1  # not a blank picture
    for label in (1, 2):
        assert pixels_near(png, label_color(label)) > 100, label  # the solid reference contours (and legend)
    empty = imread(draw_case(tmp_path / "empty.png", np.zeros_like(ref), np.zeros_like(pred), image=image,
                             labels=[1, 2]))  # fmt: skip
    assert colored_pixels(png) > colored_pixels(empty) + 2000  # the semi-transparent prediction fills
    blank = imread(draw_case(tmp_path / "blank.png", ref, pred, labels=[1, 2]))
    assert mid_grey_pixels(png) > 50 * mid_grey_pixels(blank)  # the grey image behind the labels


def test_without_an_image_the_labels_are_drawn_on_a_blank_background(tmp_path):
    _, ref, pred = case_arrays()
    png = imread(draw_case(tmp_path / "blank.png", ref, pred, labels=[1, 2]))
    assert pixels_near(png, label_color(1)) > 100 and colored_pixels(png) > 2000
    with pytest.raises(UsageError, match="must have one shape"):
        draw_case(tmp_path / "bad.png", ref, pred[:-1], labels=[1])


@pytest.fixture
def evaluated(tmp_path):
    """Two cases written as files (images, references, predictions) and their evaluation summary."""
    write_cases(tmp_path, shifts=(1, 3))
    return tmp_path, evaluate_folder(tmp_path / "ref", tmp_path / "pred", [1, 2])


def test_write_plots_draws_every_case_and_the_dice_boxplot(evaluated):
    root, summary = evaluated
    files = write_plots(summary, root / "out", images_dir=root / "images", label_names={1: "a", 2: "b"})
    assert files.folder == root / "out" / "plots"
    assert sorted(files.cases) == ["case_0", "case_1"] and all(p.is_file() for p in files.cases.values())
    box = imread(files.dice_boxplot)
    assert box.shape[:2] == (round(BOXPLOT_FIGSIZE[1] * DPI), round(BOXPLOT_FIGSIZE[0] * DPI))
    assert pixels_near(box, label_color(1)) > 10 and pixels_near(box, label_color(2)) > 10
    with pytest.raises(UsageError, match="case_0_0000.nii.gz not found"):
        write_plots(summary, root / "out2", images_dir=root / "ref")


def test_boxplot_leaves_out_undefined_dice(evaluated, tmp_path):
    _, summary = evaluated
    case = summary.metric_per_case[0]
    case.metrics["2"].dice = None  # both empty in that case
    png = imread(draw_dice_boxplot(tmp_path / "box.png", summary, {1: "a", 2: "b"}))
    assert png[..., :3].std() > 0.05
