"""Collecting a run's cross-validation predictions and determining its postprocessing.

Each trained fold with end-of-training validation has ``fold_N/validation/`` (predictions of
its validation cases and ``summary.json``). As nnU-Net does, the predictions of the chosen
folds are gathered into ``<run>/crossval_results_folds_<ids>/`` (hard links where the file
system allows, copies otherwise) with a merged ``summary.json``, and the postprocessing rule
is determined on that folder against the reference files the folds' summaries name. The
decision goes to ``<run>/postprocessing.json``, where ``segforge predict`` finds it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from segforge.atomic import atomic_path
from segforge.config.jsonio import load_model, save_model
from segforge.errors import UsageError
from segforge.evaluation.evaluate_folder import EvaluationSummary, summarize
from segforge.postprocessing.decision import POSTPROCESSING_JSON, PostprocessingDecision, determine_from_files

VALIDATION_FOLDER = "validation"
SUMMARY_JSON = "summary.json"
_VALIDATE_HINT = "run end-of-training validation: `segforge train --task N --fold F --validate-only`"


def run_folder_of(model_dir: Path) -> Path:
    """The ``<trainer>__<network>__<plans>`` folder for a run folder or one of its fold folders."""
    model_dir = Path(model_dir)
    return model_dir.parent if model_dir.name.startswith("fold_") else model_dir


def validated_folds(run_dir: Path, folds: list[str] | None) -> list[Path]:
    """Fold folders with ``validation/summary.json``: the requested ones (all must have it) or every one."""
    from segforge.inference.model_loading import fold_folders

    chosen = fold_folders(run_dir, folds)
    done = [f for f in chosen if (f / VALIDATION_FOLDER / SUMMARY_JSON).is_file()]
    missing = [f.name for f in chosen if f not in done]
    if folds and missing:
        raise UsageError(f"{run_dir}: {', '.join(missing)} has no {VALIDATION_FOLDER}/{SUMMARY_JSON}",
                         hint=_VALIDATE_HINT)  # fmt: skip
    if not done:
        raise UsageError(f"no fold of {run_dir} has {VALIDATION_FOLDER}/{SUMMARY_JSON} (fold_all has no validation)",
                         hint=_VALIDATE_HINT)  # fmt: skip
    return done


def _link_or_copy(source: Path, target: Path) -> None:
    """Hard-link ``source`` to ``target`` (replacing it), or copy atomically where links are impossible."""
    with atomic_path(target, fsync=False) as tmp:
        try:
            tmp.unlink()
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)


def collect_crossval(run_dir: Path, folds: list[str] | None = None) -> tuple[Path, EvaluationSummary]:
    """``<run>/crossval_results_folds_<ids>/`` with every validated fold's predictions and a merged summary."""
    run_dir = run_folder_of(run_dir)
    fold_dirs = validated_folds(run_dir, folds)
    ids = "_".join(f.name.removeprefix("fold_") for f in fold_dirs)
    out = run_dir / f"crossval_results_folds_{ids}"
    out.mkdir(parents=True, exist_ok=True)
    cases, labels, seen = [], None, {}
    for fold in fold_dirs:
        summary = load_model(fold / VALIDATION_FOLDER / SUMMARY_JSON, EvaluationSummary, hint=_VALIDATE_HINT)
        labels = labels or summary.labels
        if getattr(summary, "regions", None) or getattr(summary, "ignore_label", None) is not None:
            raise UsageError(
                f"{fold.name} was validated with regions or an ignore label: largest-component postprocessing "
                "is determined on plain labels only",
                hint="predict without postprocessing (there is nothing to determine)",
            )
        for case in summary.metric_per_case:
            if case.case_id in seen:
                raise UsageError(f"case {case.case_id} is in the validation of both {seen[case.case_id]} and "
                                 f"{fold.name}", hint="pass --folds of one cross-validation split")  # fmt: skip
            seen[case.case_id] = fold.name
            source = fold / VALIDATION_FOLDER / Path(case.prediction_file).name  # beside its summary, if moved
            target = out / source.name
            _link_or_copy(source, target)
            cases.append(case.model_copy(update={"prediction_file": str(target)}))
    kept = {Path(c.prediction_file).name for c in cases} | {SUMMARY_JSON}
    for stale in (p for p in out.iterdir() if p.is_file() and p.name not in kept):  # from an earlier collection
        stale.unlink()
    refs = {str(Path(c.reference_file).parent) for c in cases}
    merged = summarize(cases, labels or [], Path(refs.pop()) if len(refs) == 1 else Path(""), out)
    save_model(out / SUMMARY_JSON, merged)
    return out, merged


def determine_for_run(
    run_dir: Path, folds: list[str] | None = None, image_io: Any = None
) -> tuple[PostprocessingDecision, Path]:
    """Collect the cross-validation predictions, decide, and write ``<run>/postprocessing.json``."""
    run_dir = run_folder_of(run_dir)
    folder, merged = collect_crossval(run_dir, folds)
    pairs = [(Path(c.reference_file), Path(c.prediction_file)) for c in merged.metric_per_case]
    if image_io is None:  # the IO owning the validated files (PNG for a natural-image run)
        from segforge.io.image_io import image_io_for

        image_io = image_io_for(pairs[0][0] if pairs else ".nii.gz")
    missing = [str(r) for r, _ in pairs if not r.is_file()]
    if missing:
        raise UsageError(
            f"reference segmentation {missing[0]} (named in a fold's validation summary) is missing",
            hint="restore the raw dataset's labelsTr, or re-run validation with --validate-only",
        )
    decision = determine_from_files(pairs, merged.labels, image_io, source=str(folder))
    path = run_dir / POSTPROCESSING_JSON
    save_model(path, decision)
    return decision, path
