"""Pictures of an evaluation: one PNG per case with three orthogonal slices, and a Dice box plot.

A number such as "Dice 0.62" does not say *where* a prediction is wrong; a picture of the
slices through the structure does. Each case figure cuts the volume through the centre of the
foreground (reference and prediction together, so a prediction that is in the wrong place is
still in the picture) along the three array axes, and draws the image in grey, the reference
as a solid contour and the prediction as a semi-transparent fill, in one colour per label.

matplotlib is used through its object API with the Agg canvas (no pyplot, no display, no
global state), and every PNG is written atomically.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from segforge.atomic import atomic_path
from segforge.errors import SegforgeError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from segforge.evaluation.evaluate_folder import EvaluationSummary

#: Okabe-Ito colours (distinguishable with the common colour-vision deficiencies), one per label
LABEL_COLORS = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#D55E00", "#CC79A7", "#0072B2")
CASE_FIGSIZE = (12.0, 4.6)  # inches; at DPI 100 a 1200 x 460 PNG
BOXPLOT_FIGSIZE = (6.0, 4.5)
DPI = 100
PRED_ALPHA = 0.45
CONTOUR_UPSAMPLE = 4  # contours follow the voxel edges more closely on a finer grid
VIEW_NAMES = ("axial (z)", "coronal (y)", "sagittal (x)")
PLOTS_FOLDER = "plots"
BOXPLOT_NAME = "dice_boxplot.png"


class PlotError(SegforgeError):
    """A picture could not be drawn (matplotlib missing, unreadable image)."""


@dataclass
class PlotFiles:
    """The PNGs written by :func:`write_plots` (paths are absolute)."""

    folder: Path
    cases: dict[str, Path] = field(default_factory=dict)
    dice_boxplot: Path | None = None


def label_color(label: int) -> str:
    return LABEL_COLORS[(int(label) - 1) % len(LABEL_COLORS)]


def _figure(figsize: tuple[float, float]) -> Figure:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        raise PlotError("matplotlib is not installed", hint="pip install matplotlib") from None
    fig = Figure(figsize=figsize, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return path


# -- geometry ------------------------------------------------------------------------------------
def foreground_centre(*masks: np.ndarray) -> tuple[int, ...]:
    """The voxel at the centre of mass of the union of ``masks`` (the volume centre when all are empty)."""
    union = np.zeros(masks[0].shape, dtype=bool)
    for mask in masks:
        union |= mask > 0
    if not union.any():
        return tuple(s // 2 for s in union.shape)
    coords = np.argwhere(union).mean(axis=0)
    return tuple(int(min(max(round(c), 0), s - 1)) for c, s in zip(coords, union.shape, strict=True))


def orthogonal_slices(volume: np.ndarray, centre: Sequence[int]) -> list[np.ndarray]:
    """The axial (fixed z), coronal (fixed y) and sagittal (fixed x) slices through ``centre``."""
    z, y, x = centre
    return [volume[z], volume[:, y, :], volume[:, :, x]]


def slice_aspects(spacing: Sequence[float]) -> list[float]:
    """imshow aspect (row spacing / column spacing) of the three views, so millimetres look square."""
    sz, sy, sx = spacing
    return [sy / sx, sz / sx, sz / sy]


def intensity_window(image: np.ndarray) -> tuple[float, float]:
    """0.5th-99.5th percentile of the image: robust to the few very bright voxels MRI often has."""
    finite = image[np.isfinite(image)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(finite, [0.5, 99.5])
    return float(low), float(high if high > low else low + 1.0)


# -- one case --------------------------------------------------------------------------------------
def _upsampled_grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    k = CONTOUR_UPSAMPLE
    ys = (np.arange(shape[0] * k) + 0.5) / k - 0.5
    xs = (np.arange(shape[1] * k) + 0.5) / k - 0.5
    return xs, ys


def _draw_view(ax: Any, image: np.ndarray | None, ref: np.ndarray, pred: np.ndarray, labels: Sequence[int],
               aspect: float, window: tuple[float, float], title: str) -> None:  # fmt: skip
    """One panel: grey image (or a blank one), prediction fills, reference contours."""
    from matplotlib.colors import to_rgba

    background = image if image is not None else np.zeros(ref.shape, dtype=np.float32)
    ax.imshow(background, cmap="gray", vmin=window[0], vmax=window[1], aspect=aspect, origin="lower",
              interpolation="nearest")  # fmt: skip
    for label in labels:
        overlay = np.zeros((*pred.shape, 4), dtype=np.float32)
        overlay[pred == label] = to_rgba(label_color(label), PRED_ALPHA)
        ax.imshow(overlay, aspect=aspect, origin="lower", interpolation="nearest")
        mask = ref == label
        if mask.any():
            fine = np.kron(mask.astype(np.float32), np.ones((CONTOUR_UPSAMPLE, CONTOUR_UPSAMPLE), np.float32))
            xs, ys = _upsampled_grid(mask.shape)
            ax.contour(xs, ys, fine, levels=[0.5], colors=[label_color(label)], linewidths=1.6)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def _legend(fig: Figure, labels: Sequence[int], names: Mapping[int, str]) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = []
    for label in labels:
        color, name = label_color(label), names.get(label, f"label {label}")
        handles.append(Line2D([0], [0], color=color, linewidth=2, label=f"{name}: reference (contour)"))
        handles.append(Patch(facecolor=color, alpha=PRED_ALPHA, label=f"{name}: prediction (fill)"))
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), fontsize=8, frameon=False)


def dice_title(case_id: str, dice: Mapping[int, float | None], names: Mapping[int, str]) -> str:
    parts = [f"{names.get(k, f'label {k}')} {'-' if v is None else f'{v:.3f}'}" for k, v in dice.items()]
    return f"{case_id} - Dice: " + ", ".join(parts)


def draw_case(path: str | os.PathLike[str], reference: np.ndarray, prediction: np.ndarray, *,
              image: np.ndarray | None = None, spacing: Sequence[float] = (1.0, 1.0, 1.0),
              labels: Sequence[int] = (1,), label_names: Mapping[int, str] | None = None,
              title: str = "") -> Path:  # fmt: skip
    """Write the three-view PNG of one 3D case (arrays in z, y, x order; ``image`` may be None)."""
    if reference.shape != prediction.shape or (image is not None and image.shape != reference.shape):
        raise UsageError(
            f"{path}: reference {reference.shape}, prediction {prediction.shape} and image "
            f"{None if image is None else image.shape} must have one shape",
            hint="pass the image, reference and prediction of the same case",
        )
    names = dict(label_names or {})
    centre = foreground_centre(*(np.isin(a, list(labels)) for a in (reference, prediction)))
    window = intensity_window(image) if image is not None else (0.0, 1.0)
    views = [orthogonal_slices(a, centre) if a is not None else [None] * 3 for a in (image, reference, prediction)]
    fig = _figure(CASE_FIGSIZE)
    axes = fig.subplots(1, 3)
    for i, ax in enumerate(axes):
        where = ("z", "y", "x")[i]
        _draw_view(ax, views[0][i], views[1][i], views[2][i], labels, slice_aspects(spacing)[i], window,
                   f"{VIEW_NAMES[i]} {where}={centre[i]}")  # fmt: skip
    fig.suptitle(title, fontsize=11)
    _legend(fig, labels, names)
    fig.subplots_adjust(left=0.02, right=0.98, top=0.86, bottom=0.16, wspace=0.06)
    return _save(fig, Path(path))


# -- the box plot ------------------------------------------------------------------------------------
def dice_values(summary: EvaluationSummary) -> dict[int, list[float]]:
    """Per label, the defined Dice values over the cases (NaN/None left out, as in the means)."""
    values: dict[int, list[float]] = {int(lb): [] for lb in summary.labels}
    for case in summary.metric_per_case:
        for label in values:
            dice = case.metrics[str(label)].dice
            if dice is not None and not math.isnan(dice):
                values[label].append(float(dice))
    return values


def draw_dice_boxplot(path: str | os.PathLike[str], summary: EvaluationSummary,
                      label_names: Mapping[int, str] | None = None) -> Path:  # fmt: skip
    """Dice per label over the cases: a box plot with every case as a dot and the mean as a diamond."""
    names = dict(label_names or {})
    values = dice_values(summary)
    labels = list(values)
    fig = _figure(BOXPLOT_FIGSIZE)
    ax = fig.subplots()
    data = [values[lb] or [math.nan] for lb in labels]
    box = ax.boxplot(data, patch_artist=True, widths=0.5, showfliers=False, medianprops={"color": "black"})
    rng = np.random.default_rng(0)  # fixed jitter: the same summary gives the same picture
    for i, label in enumerate(labels, start=1):
        box["boxes"][i - 1].set(facecolor=label_color(label), alpha=0.35)
        points = values[label]
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(points)), points, s=14, color=label_color(label), zorder=3)
        if points:
            ax.scatter([i], [float(np.mean(points))], marker="D", s=30, color="black", zorder=4)
    ax.set_xticks(range(1, len(labels) + 1), [names.get(lb, f"label {lb}") for lb in labels])
    ax.set_ylim(0.0, 1.02)
    ax.set_ylabel("Dice")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(f"Dice per label over {len(summary.metric_per_case)} case(s) (diamond: mean)", fontsize=10)
    fig.tight_layout()
    return _save(fig, Path(path))


# -- a whole evaluation ------------------------------------------------------------------------------
def _read_case(image_io: Any, case: Any, images_dir: Path | None) -> tuple[np.ndarray | None, np.ndarray, np.ndarray,
                                                                            tuple[float, ...]]:  # fmt: skip
    ref, props = image_io.read_seg(case.reference_file)
    pred, _ = image_io.read_seg(case.prediction_file)
    image = None
    if images_dir is not None:
        ending = next((e for e in image_io.file_endings if str(case.reference_file).endswith(e)), ".nii.gz")
        image_file = Path(images_dir) / f"{case.case_id}_0000{ending}"
        if not image_file.is_file():
            raise UsageError(f"{image_file} not found (image of case {case.case_id})",
                             hint="pass --images with a folder holding CASE_0000 files, or leave it out")  # fmt: skip
        image = image_io.read_images([image_file])[0][0]
    return image, ref[0], pred[0], tuple(props.spacing)


def write_plots(summary: EvaluationSummary, out_dir: str | os.PathLike[str], *,
                images_dir: str | os.PathLike[str] | None = None, label_names: Mapping[int, str] | None = None,
                image_io: Any = None) -> PlotFiles:  # fmt: skip
    """``out_dir/plots/<case>.png`` for every evaluated case and ``out_dir/plots/dice_boxplot.png``.

    The images (``images_dir/CASE_0000.<ending>``) are only the background; without them the
    contours are drawn on black. For 2D cases (one slice) only the axial panel is meaningful.
    """
    if image_io is None and summary.metric_per_case:  # the IO owning the evaluated files (PNG, NIfTI, ...)
        from segforge.io.image_io import image_io_for

        image_io = image_io_for(summary.metric_per_case[0].reference_file)
    files = PlotFiles(Path(out_dir) / PLOTS_FOLDER)
    labels = [int(lb) for lb in summary.labels]
    names = dict(label_names or {})
    for case in summary.metric_per_case:
        image, ref, pred, spacing = _read_case(image_io, case, Path(images_dir) if images_dir else None)
        dice = {lb: case.metrics[str(lb)].dice for lb in labels}
        files.cases[case.case_id] = draw_case(
            files.folder / f"{case.case_id}.png", ref, pred, image=image, spacing=spacing, labels=labels,
            label_names=names, title=dice_title(case.case_id, dice, names),
        )  # fmt: skip
    files.dice_boxplot = draw_dice_boxplot(files.folder / BOXPLOT_NAME, summary, names)
    return files
