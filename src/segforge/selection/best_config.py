"""``find-best-config``: rank trained configurations and their pairwise ensembles by cross-validation Dice.

As nnU-Net's ``find_best_configuration``: each run's score is its pooled cross-validation
(:mod:`.trained_runs`); every pair of runs that kept validation probabilities is ensembled
fold by fold (the averaged validation predictions go to
``<results>/<dataset>/ensembles/ensemble___<runA>___<runB>/crossval_results_folds_<ids>/``)
and evaluated against the raw dataset's ``labelsTr``; the best mean foreground Dice wins. A
tie goes to the entry with fewer models (cheaper to run) and then to the one found first.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from segforge.errors import ConfigError, SegforgeError, UsageError
from segforge.evaluation.evaluate_folder import CaseResult, EvaluationSummary, _case_job, summarize
from segforge.evaluation.trained_runs import ENSEMBLES_FOLDER, TrainedRun, discover_runs, merge_folds


@dataclass
class Candidate:
    """A single run or an ensemble of runs with its cross-validation summary."""

    kind: Literal["single", "ensemble"]
    runs: list[TrainedRun]
    summary: EvaluationSummary
    folder: Path  # the run folder, or the ensemble's crossval folder

    @property
    def name(self) -> str:
        if self.kind == "single":
            return self.runs[0].identifier
        return ensemble_name(self.runs)

    @property
    def foreground_dice(self) -> float:
        value = self.summary.foreground_mean.get("dice")
        return float("-inf") if value is None else float(value)


@dataclass
class SearchResult:
    """Everything find-best-config found: candidates best first, and what it left out and why."""

    dataset_folder: Path
    folds: list[str]
    ranking: list[Candidate]
    skipped: list[tuple[str, Path, str]] = field(default_factory=list)  # (name, folder, reason)

    @property
    def best(self) -> Candidate:
        return self.ranking[0]


def ensemble_name(runs: Sequence[TrainedRun]) -> str:
    """``ensemble___<runA>___<runB>`` (nnU-Net's naming, with segforge's run identifiers)."""
    return "ensemble___" + "___".join(r.identifier for r in runs)


def crossval_folder_name(folds: Sequence[str]) -> str:
    return "crossval_results_folds_" + "_".join(folds)


# -- references ---------------------------------------------------------------------------------
@dataclass
class References:
    """Where each case's reference segmentation is, and the dataset's file ending."""

    files: dict[str, Path]
    file_ending: str
    folder: Path | None


def find_references(dataset_name: str, runs: Sequence[TrainedRun]) -> References:
    """``labelsTr`` of the raw dataset; without it, the reference files the fold summaries name."""
    from segforge.io.layouts import open_raw_dataset, resolve_task

    try:
        raw = open_raw_dataset(resolve_task(dataset_name))
    except SegforgeError:
        raw = None
    if raw is not None:
        files = {c.case_id: c.label for c in raw.cases if c.label is not None}
        return References(files, raw.file_ending, raw.labels_folder)
    files = {}
    for run in runs:
        for case in run.crossval.metric_per_case if run.crossval else []:
            files.setdefault(case.case_id, Path(case.reference_file))
    ending = _ending_of(next(iter(files.values()))) if files else ".nii.gz"
    return References(files, ending, None)


def _ending_of(path: Path) -> str:
    name = path.name
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix


# -- ensembles ------------------------------------------------------------------------------------
def evaluate_cases(
    cases: Sequence[str], pred_folder: Path, refs: References, like: EvaluationSummary, num_processes: int,
    image_io: Any,
) -> EvaluationSummary:  # fmt: skip
    """Evaluate ``pred_folder/CASE<ending>`` against each case's reference as ``like`` was evaluated
    (same labels, regions and ignore label); writes ``summary.json`` there."""
    from segforge.config.jsonio import save_model
    from segforge.io.parallel import map_cases

    missing = [c for c in cases if c not in refs.files or not refs.files[c].is_file()]
    if missing:
        where = refs.folder or "the fold summaries"
        raise UsageError(f"no reference segmentation for case {missing[0]} in {where}",
                         hint="keep the raw dataset (labelsTr) where SEGFORGE_RAW points")  # fmt: skip
    labels = tuple(int(x) for x in like.labels)
    regions = {int(k): tuple(v) for k, v in like.regions.items()} if like.regions else None
    scheme = () if regions is None and like.ignore_label is None else (regions, like.ignore_label)
    jobs = [(c, refs.files[c], pred_folder / f"{c}{refs.file_ending}", labels, image_io, *scheme) for c in cases]
    results = map_cases(_case_job, jobs, num_processes, description="evaluating", show=False)
    for result in results:
        if isinstance(result, tuple):
            raise ConfigError(result[1], hint=result[2])
    case_results: list[CaseResult] = list(results)
    summary = summarize(case_results, labels, refs.folder or pred_folder, pred_folder)
    summary = summary.model_copy(update={"regions": like.regions, "ignore_label": like.ignore_label})
    save_model(pred_folder / "summary.json", summary)
    return summary


def ensemble_crossval(
    pair: Sequence[TrainedRun], folds: Sequence[str], output: Path, refs: References, *,
    num_processes: int, skip_existing: bool, image_io: Any,
) -> EvaluationSummary:  # fmt: skip
    """Average the runs' validation probabilities fold by fold into ``output`` and evaluate the result."""
    from segforge.ensembling import ensemble_folders

    cases: list[str] = []
    for fold in folds:
        ensemble_folders([r.validation_folder(fold) for r in pair], output, num_processes=num_processes,
                         skip_existing=skip_existing, file_ending=refs.file_ending, image_io=image_io)  # fmt: skip
        cases += pair[0].fold_cases[fold]
    if pair[0].crossval is None:  # pragma: no cover - only runs with a cross-validation are paired
        raise ConfigError(f"{pair[0].folder}: no cross-validation summary", hint="re-run find-best-config")
    return evaluate_cases(cases, output, refs, pair[0].crossval, num_processes, image_io)


def _scheme(summary: EvaluationSummary) -> tuple[Any, ...]:
    return (summary.labels, summary.regions, summary.ignore_label)


def _pair_problem(a: TrainedRun, b: TrainedRun, folds: Sequence[str]) -> str | None:
    """Why two runs cannot be ensembled on their validation cases (None when they can)."""
    for run in (a, b):
        if not run.has_probabilities:
            return f"{run.identifier} has no validation probabilities (train with --npz)"
    for fold in folds:
        if sorted(a.fold_cases[fold]) != sorted(b.fold_cases[fold]):
            return f"fold_{fold} validates different cases in the two runs (different splits)"
    scheme_a, scheme_b = (None if r.crossval is None else _scheme(r.crossval) for r in (a, b))
    if scheme_a != scheme_b:
        return f"the runs were evaluated differently (labels, regions, ignore label: {scheme_a} vs {scheme_b})"
    return None


# -- the search -----------------------------------------------------------------------------------
def _rank(candidates: list[Candidate]) -> list[Candidate]:
    order = {id(c): i for i, c in enumerate(candidates)}
    return sorted(candidates, key=lambda c: (-c.foreground_dice, len(c.runs), order[id(c)]))


def find_best_configuration(
    dataset_folder: Path,
    *,
    folds: Sequence[str] = ("0", "1", "2", "3", "4"),
    configurations: Sequence[str] | None = None,
    trainers: Sequence[str] | None = None,
    ensembles: bool = True,
    num_processes: int = 1,
    skip_existing: bool = False,
    image_io: Any = None,
) -> SearchResult:
    """Score every run (and pairwise ensemble) of ``<results>/<dataset>`` and rank them, best first."""
    folds = [str(f) for f in folds]
    runs = discover_runs(dataset_folder, configurations, trainers)
    if not runs:
        wanted = f" (configurations {list(configurations)})" if configurations else ""
        raise UsageError(f"no trained runs in {dataset_folder}{wanted}",
                         hint="train configurations first (segforge train --task N --config C --fold F)")  # fmt: skip
    for run in runs:
        merge_folds(run, folds)
    skipped = [(r.identifier, r.folder, r.skip_reason) for r in runs if r.skip_reason]
    usable = [r for r in runs if r.crossval is not None and not r.skip_reason]
    if not usable:
        first = skipped[0]
        raise UsageError(f"no run has validation for folds {' '.join(folds)}: {first[0]}: {first[2]}",
                         hint="choose --folds that were trained and validated, or validate them first")  # fmt: skip
    candidates = [Candidate("single", [r], r.crossval, r.folder) for r in usable if r.crossval]
    if ensembles and len(usable) > 1:
        refs = find_references(dataset_folder.name, usable)
        if image_io is None:  # the IO owning the dataset's files (PNG for a natural-image dataset)
            from segforge.io.image_io import image_io_for

            image_io = image_io_for(refs.file_ending)
        for pair in itertools.combinations(usable, 2):
            name = ensemble_name(pair)
            output = dataset_folder / ENSEMBLES_FOLDER / name / crossval_folder_name(folds)
            if problem := _pair_problem(*pair, folds):
                skipped.append((name, output.parent, problem))
                continue
            try:
                summary = ensemble_crossval(pair, folds, output, refs, num_processes=num_processes,
                                            skip_existing=skip_existing, image_io=image_io)  # fmt: skip
            except SegforgeError as exc:  # one bad pair must not stop the search
                skipped.append((name, output.parent, exc.message))
                continue
            candidates.append(Candidate("ensemble", list(pair), summary, output))
    return SearchResult(dataset_folder, folds, _rank(candidates), skipped)


# -- postprocessing of the winner ------------------------------------------------------------------
def determine_postprocessing(candidate: Candidate, folds: Sequence[str], image_io: Any = None) -> Path | None:
    """Decide largest-component postprocessing on the winner's cross-validation (as nnU-Net does).

    A single run gets ``<run>/postprocessing.json`` (``segforge predict`` applies it by itself), an
    ensemble ``ensembles/<name>/postprocessing.json`` (applied with ``segforge postprocess apply``).
    Region-based and ignore-label evaluations are left alone: the component rules score plain labels.
    Returns the decision file, or None when none was determined.
    """
    from segforge.config.jsonio import save_model
    from segforge.postprocessing.crossval import determine_for_run
    from segforge.postprocessing.decision import POSTPROCESSING_JSON, determine_from_files

    summary = candidate.summary
    if summary.regions or summary.ignore_label is not None:
        return None
    if image_io is None and summary.metric_per_case:  # the IO owning the evaluated files
        from segforge.io.image_io import image_io_for

        image_io = image_io_for(summary.metric_per_case[0].reference_file)
    if candidate.kind == "single":
        return determine_for_run(candidate.runs[0].folder, list(folds), image_io=image_io)[1]
    pairs = [(Path(c.reference_file), Path(c.prediction_file)) for c in summary.metric_per_case]
    decision = determine_from_files(pairs, summary.labels, image_io, source=str(candidate.folder))
    path = candidate.folder.parent / POSTPROCESSING_JSON
    save_model(path, decision)
    return path
