"""Evaluating a folder of predictions against a folder of reference segmentations.

Every reference file needs a prediction of the same name (missing ones are listed in one
error before anything is computed) with the same geometry (shape, spacing, origin,
direction; a mismatch names the file). Metrics per case and label come from
:mod:`segforge.evaluation.metrics`; means are taken over cases per label, ignoring NaN
(undefined) values, and ``foreground_mean`` over the labels' means, as nnU-Net v2's
``summary.json`` has them. The summary is a pydantic model written atomically; NaN becomes
``null`` in the JSON.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from segforge.config.jsonio import save_model
from segforge.errors import ConfigError, SegforgeError, UsageError
from segforge.evaluation.metrics import COUNT_NAMES, METRIC_NAMES, case_scores, nanmean

SUMMARY_FORMAT_VERSION = 1
CONVENTIONS = (
    "Dice/IoU NaN (excluded from means) when reference and prediction are both empty; precision NaN without "
    "prediction, recall NaN without reference; HD95 = max of directed 95th percentiles, ASSD = mean of both "
    "directions' surface distances, in mm; both empty -> NaN, one side empty -> image diagonal in mm."
)
Number = float | None


class LabelResult(BaseModel):
    """Metrics of one label in one case (None where undefined)."""

    model_config = ConfigDict(extra="forbid")

    dice: Number
    iou: Number
    precision: Number
    recall: Number
    hd95: Number
    assd: Number
    tp: int
    fp: int
    fn: int
    tn: int
    n_ref: int
    n_pred: int


class CaseResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_id: str
    reference_file: str
    prediction_file: str
    metrics: dict[str, LabelResult]


class EvaluationSummary(BaseModel):
    """``summary.json``: per-case metrics, means per label over cases, and the mean over labels."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = SUMMARY_FORMAT_VERSION
    reference_folder: str
    prediction_folder: str
    labels: list[int]
    conventions: str = CONVENTIONS
    metric_per_case: list[CaseResult]
    mean: dict[str, dict[str, Number]]
    foreground_mean: dict[str, Number]
    #: region-based evaluation: label (as exported) -> the label values forming the region's mask
    regions: dict[str, list[int]] | None = None
    #: reference voxels with this value were left out of every metric
    ignore_label: int | None = None


def _none_if_nan(value: float) -> float | None:
    return None if isinstance(value, float) and math.isnan(value) else value


def _nan_if_none(value: float | None) -> float:
    return float("nan") if value is None else float(value)


# -- listing -------------------------------------------------------------------------------------
def _case_id(name: str, endings: Sequence[str]) -> str | None:
    for ending in sorted(endings, key=len, reverse=True):
        if name.endswith(ending) and len(name) > len(ending):
            return name[: -len(ending)]
    return None


def pair_files(ref_folder: Path, pred_folder: Path, endings: Sequence[str]) -> list[tuple[str, Path, Path]]:
    """``(case_id, reference, prediction)`` for every reference file; missing predictions -> one UsageError."""
    for folder, what in ((ref_folder, "reference"), (pred_folder, "prediction")):
        if not folder.is_dir():
            raise UsageError(f"{what} folder {folder} does not exist", hint=f"pass the folder holding the {what}s")
    refs = sorted(p for p in ref_folder.iterdir() if not p.name.startswith(".") and _case_id(p.name, endings))
    if not refs:
        raise UsageError(f"no segmentations ({', '.join(endings)}) in {ref_folder}", hint="check the --ref folder")
    missing = [p.name for p in refs if not (pred_folder / p.name).is_file()]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise UsageError(
            f"{len(missing)} of {len(refs)} case(s) have no prediction in {pred_folder}: {shown}",
            hint="predict the missing cases (segforge predict --continue) or evaluate against a matching --ref",
        )
    return [(_case_id(p.name, endings) or p.name, p, pred_folder / p.name) for p in refs]


def reader_for_folder(folder: Path, registries: Any = None) -> Any:
    """The image IO registered for the segmentations in ``folder``: the ending most of its files have.

    Evaluation reads references and predictions with the component that owns their format (PNG
    predictions of a natural-image model cannot go through SimpleITK); a folder without any
    readable file gets SimpleITK, and :func:`pair_files` then says that it holds no segmentations.
    """
    from collections import Counter

    from segforge.io.image_io import image_io_for

    if registries is None:
        from segforge.plugins import get_registries

        registries = get_registries()
    endings = {e for entry in registries.image_io for e in entry.component.file_endings}
    counts: Counter[str] = Counter()
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        claimed = [e for e in endings if path.name.endswith(e) and len(path.name) > len(e)]
        if claimed and not path.name.startswith("."):
            counts[max(claimed, key=len)] += 1
    if not counts:
        return registries.image_io.get("simpleitk")
    return image_io_for(max(sorted(counts), key=lambda e: counts[e]), registries)


# -- one case --------------------------------------------------------------------------------------
def evaluate_pair(
    ref_file: Path,
    pred_file: Path,
    labels: Sequence[int],
    image_io: Any,
    *,
    regions: dict[int, tuple[int, ...]] | None = None,
    ignore_label: int | None = None,
) -> dict[int, Any]:
    """Scores per label of one prediction against its reference (geometry must match).

    ``regions`` (label -> member labels) scores a label as the region it is exported for;
    ``ignore_label`` leaves voxels with that reference value out (see :mod:`.label_classes`).
    """
    ref, ref_props = image_io.read_seg(ref_file)
    pred, pred_props = image_io.read_seg(pred_file)
    diffs = ref_props.geometry_differences(pred_props)
    if diffs:
        field = diffs[0]
        raise ConfigError(
            f"{pred_file}: {field} {pred_props.describe(field)} differs from the reference's "
            f"{ref_props.describe(field)} ({ref_file})",
            hint="the prediction must be in the reference image's geometry (export it with segforge predict)",
        )
    ref, pred = ref[0], pred[0]
    spacing = list(ref_props.spacing)
    if ref_props.is_2d:  # drop the fake axis: a 1-voxel axis would make every voxel a surface voxel
        ref, pred, spacing = ref[0], pred[0], spacing[1:]
    if regions is None and ignore_label is None:
        return case_scores(ref, pred, labels, spacing)
    from segforge.evaluation.label_classes import class_scores

    classes = {int(lb): tuple((regions or {}).get(int(lb), (int(lb),))) for lb in labels}
    return class_scores(ref, pred, classes, spacing, ignore_label)


def _case_job(job: tuple[str, Path, Path, tuple[int, ...], Any]) -> Any:
    """Worker entry: a CaseResult, or the error as a value (hints do not survive pickling)."""
    case_id, ref_file, pred_file, labels, image_io, *scheme = job  # scheme: (regions, ignore_label) or empty
    regions, ignore_label = (*scheme, None, None)[:2]
    try:
        scores = evaluate_pair(ref_file, pred_file, labels, image_io, regions=regions, ignore_label=ignore_label)
    except SegforgeError as exc:
        return ("error", exc.message, exc.hint)
    metrics = {str(k): LabelResult(**{n: _none_if_nan(v) for n, v in s.as_dict().items()}) for k, s in scores.items()}
    return CaseResult(case_id=case_id, reference_file=str(ref_file), prediction_file=str(pred_file), metrics=metrics)


# -- the folder ------------------------------------------------------------------------------------
def summarize(cases: list[CaseResult], labels: Sequence[int], ref_folder: Path, pred_folder: Path) -> EvaluationSummary:
    """Means per label over cases (NaN ignored) and over labels."""
    mean: dict[str, dict[str, Number]] = {}
    for label in map(str, labels):
        values = {m: [_nan_if_none(getattr(c.metrics[label], m)) for c in cases] for m in (*METRIC_NAMES, *COUNT_NAMES)}
        mean[label] = {m: _none_if_nan(nanmean(v)) for m, v in values.items()}
    foreground = {m: _none_if_nan(nanmean([_nan_if_none(mean[str(lb)][m]) for lb in labels])) for m in METRIC_NAMES}
    return EvaluationSummary(reference_folder=str(ref_folder), prediction_folder=str(pred_folder),
                             labels=[int(lb) for lb in labels], metric_per_case=cases, mean=mean,
                             foreground_mean=foreground)  # fmt: skip


def evaluate_folder(
    ref_folder: str | os.PathLike[str],
    pred_folder: str | os.PathLike[str],
    labels: Sequence[int],
    *,
    num_processes: int = 1,
    output_file: str | os.PathLike[str] | None = None,
    image_io: Any = None,
    show_progress: bool = False,
    regions: dict[int, tuple[int, ...]] | None = None,
    ignore_label: int | None = None,
) -> EvaluationSummary:
    """Evaluate every reference case; writes ``output_file`` (summary.json) atomically when given.

    ``regions`` / ``ignore_label``: region-based scoring and unannotated voxels, as in :func:`evaluate_pair`.
    """
    from segforge.io.parallel import map_cases

    if not labels:
        raise UsageError("no labels to evaluate", hint="pass --labels, e.g. --labels 1 2")
    ref_folder, pred_folder = Path(ref_folder), Path(pred_folder)
    if image_io is None:
        image_io = reader_for_folder(ref_folder)
    pairs = pair_files(ref_folder, pred_folder, image_io.file_endings)
    jobs = [(cid, r, p, tuple(int(x) for x in labels), image_io, regions, ignore_label) for cid, r, p in pairs]
    results = map_cases(_case_job, jobs, num_processes, description="evaluating", show=show_progress)
    for result in results:
        if isinstance(result, tuple):
            raise ConfigError(result[1], hint=result[2])
    summary = summarize(results, labels, ref_folder, pred_folder)
    if regions is not None or ignore_label is not None:
        used = {str(k): list(v) for k, v in (regions or {}).items() if int(k) in {int(x) for x in labels}}
        summary = summary.model_copy(update={"regions": used or None, "ignore_label": ignore_label})
    if output_file is not None:
        save_model(output_file, summary)
    return summary
