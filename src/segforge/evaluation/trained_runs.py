"""Finding the trained runs of a dataset and merging their per-fold validation into one score.

A run is ``<results>/<dataset>/<configuration>/<trainer>__<network>__<plans>/`` (see
:mod:`segforge.artifacts.run_dir`); end-of-training validation leaves
``fold_<F>/validation/summary.json`` (and, with ``--npz``, ``CASE.npz`` + ``CASE.json``) in each
fold. nnU-Net's ``find_best_configuration`` compares configurations by the cross-validation
score: every validation case of every fold, pooled, evaluated once. The per-case metrics are
already in the fold summaries, so pooling them (no file is re-read or copied) gives exactly
that score: mean over all cases per label, then over labels (``foreground_mean``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from segforge.artifacts.run_dir import parse_run_folder_name
from segforge.config.jsonio import load_model
from segforge.errors import SegforgeError
from segforge.evaluation.evaluate_folder import CaseResult, EvaluationSummary, summarize

#: nnU-Net's configurations, listed first and in this order; any other folder holding runs follows
KNOWN_CONFIGURATIONS = ("2d", "3d_fullres", "3d_lowres", "3d_cascade_fullres")
#: ``<results>/<dataset>/ensembles/``: find-best-config's ensembled cross-validations, not runs
ENSEMBLES_FOLDER = "ensembles"
VALIDATION_HINT = "train the missing folds, or run `segforge train --validate-only` on them"


@dataclass
class TrainedRun:
    """One run folder and what find-best-config learned about it."""

    configuration: str
    trainer: str
    network: str
    plans: str
    folder: Path
    skip_reason: str | None = None
    crossval: EvaluationSummary | None = None
    has_probabilities: bool = False
    fold_cases: dict[str, list[str]] = field(default_factory=dict)

    @property
    def identifier(self) -> str:
        """``trainer__network__plans__configuration`` (nnU-Net's ``trainer__plans__configuration`` + network)."""
        return f"{self.trainer}__{self.network}__{self.plans}__{self.configuration}"

    @property
    def foreground_dice(self) -> float | None:
        return None if self.crossval is None else self.crossval.foreground_mean.get("dice")

    def validation_folder(self, fold: str) -> Path:
        return self.folder / f"fold_{fold}" / "validation"


def _is_run_folder(path: Path) -> bool:
    """``trainer__network__plans`` with at least one ``fold_*`` folder (ensemble folders have none)."""
    return path.is_dir() and parse_run_folder_name(path.name) is not None and any(path.glob("fold_*/"))


def configuration_folders(dataset_folder: Path) -> list[Path]:
    """Configuration folders under ``<results>/<dataset>``: the known ones first, then any other holding runs
    (``ensembles/`` is never one)."""
    if not dataset_folder.is_dir():
        return []
    skip = {*KNOWN_CONFIGURATIONS, ENSEMBLES_FOLDER}
    others = sorted(p for p in dataset_folder.iterdir() if p.is_dir() and p.name not in skip)
    known = [dataset_folder / c for c in KNOWN_CONFIGURATIONS if (dataset_folder / c).is_dir()]
    return known + [p for p in others if any(_is_run_folder(r) for r in p.iterdir())]


def discover_runs(
    dataset_folder: Path, configurations: Sequence[str] | None = None, trainers: Sequence[str] | None = None
) -> list[TrainedRun]:
    """Every run folder of the dataset, optionally only of the given configurations and trainers."""
    runs = []
    for config_dir in configuration_folders(dataset_folder):
        if configurations and config_dir.name not in configurations:
            continue
        for run_dir in sorted(p for p in config_dir.iterdir() if _is_run_folder(p)):
            trainer, network, plans = parse_run_folder_name(run_dir.name)  # type: ignore[misc]  # checked above
            if trainers and trainer not in trainers:
                continue
            runs.append(TrainedRun(config_dir.name, trainer, network, plans, folder=run_dir))
    return runs


def _load_fold_summary(run: TrainedRun, fold: str) -> EvaluationSummary | str:
    """The fold's validation summary, or why it cannot be used."""
    folder = run.validation_folder(fold)
    if not folder.parent.is_dir():
        return f"fold_{fold} is not trained"
    summary_file = folder / "summary.json"
    if not summary_file.is_file():
        return f"fold_{fold} has no validation/summary.json"
    try:
        return load_model(summary_file, EvaluationSummary)
    except SegforgeError as exc:
        return exc.message


def _has_probabilities(folder: Path, cases: Sequence[str]) -> bool:
    return all((folder / f"{c}.npz").is_file() and (folder / f"{c}.json").is_file() for c in cases)


def merge_folds(run: TrainedRun, folds: Sequence[str]) -> None:
    """Pool the folds' validation cases into ``run.crossval``, or set ``run.skip_reason``."""
    summaries: list[EvaluationSummary] = []
    for fold in folds:
        loaded = _load_fold_summary(run, fold)
        if isinstance(loaded, str):
            run.skip_reason = f"{loaded} ({VALIDATION_HINT})"
            return
        summaries.append(loaded)
    first = summaries[0]
    labels = first.labels
    cases: list[CaseResult] = []
    seen: set[str] = set()
    for fold, summary in zip(folds, summaries, strict=True):
        if (summary.labels, summary.regions, summary.ignore_label) != (labels, first.regions, first.ignore_label):
            run.skip_reason = (f"fold_{fold} was evaluated on other labels, regions or ignore label than "
                               f"fold_{folds[0]}")  # fmt: skip
            return
        ids = [c.case_id for c in summary.metric_per_case]
        if twice := sorted(seen.intersection(ids)):
            run.skip_reason = f"case {twice[0]} is in the validation of two folds (fold_{fold} overlaps another)"
            return
        seen.update(ids)
        run.fold_cases[fold] = ids
        cases.extend(summary.metric_per_case)
    if not cases:
        run.skip_reason = "the validation summaries hold no cases"
        return
    merged = summarize(cases, labels, Path(first.reference_folder), run.folder)
    run.crossval = merged.model_copy(update={"regions": first.regions, "ignore_label": first.ignore_label})
    run.has_probabilities = all(_has_probabilities(run.validation_folder(f), run.fold_cases[f]) for f in folds)
