"""``inference_instructions.json`` / ``.txt``: the winner of find-best-config and how to run it.

nnU-Net's ``find_best_configuration`` ends with ``inference_instructions.txt``: the commands
that reproduce the best cross-validation result on new images. segforge writes the same as a
pydantic-validated JSON (ranking, skipped runs with reasons, the exact commands) and a short
text for people. Input and output folders are placeholders (``INPUT_FOLDER``...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from segforge.atomic import atomic_write_text
from segforge.config.jsonio import save_model
from segforge.evaluation.trained_runs import TrainedRun
from segforge.selection.best_config import Candidate, SearchResult

INSTRUCTIONS_FORMAT_VERSION = 1
INSTRUCTIONS_JSON = "inference_instructions.json"
INSTRUCTIONS_TXT = "inference_instructions.txt"
POSTPROCESSING_JSON = "postprocessing.json"
METRIC = "mean foreground Dice over all validation cases of the folds (per label over cases, then over labels)"


class RunRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    configuration: str
    trainer: str
    network: str
    plans: str
    folder: str


class RankedEntry(BaseModel):
    """One candidate: a single run or an ensemble, with its cross-validation scores."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: Literal["single", "ensemble"]
    runs: list[RunRef]
    foreground_dice: float | None
    dice_per_label: dict[str, float | None]
    num_cases: int
    folder: str


class SkippedEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    folder: str
    reason: str


class InferenceInstructions(BaseModel):
    """The file's content: the best entry, the full ranking, what was skipped and the commands."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = INSTRUCTIONS_FORMAT_VERSION
    dataset: str
    folds: list[str]
    metric: str = METRIC
    best: RankedEntry
    ranking: list[RankedEntry]
    skipped: list[SkippedEntry]
    postprocessing_file: str | None
    commands: list[str]


def _run_ref(run: TrainedRun) -> RunRef:
    return RunRef(configuration=run.configuration, trainer=run.trainer, network=run.network, plans=run.plans,
                  folder=str(run.folder))  # fmt: skip


def ranked_entry(candidate: Candidate) -> RankedEntry:
    summary = candidate.summary
    return RankedEntry(
        name=candidate.name, kind=candidate.kind, runs=[_run_ref(r) for r in candidate.runs],
        foreground_dice=summary.foreground_mean.get("dice"),
        dice_per_label={label: m.get("dice") for label, m in summary.mean.items()},
        num_cases=len(summary.metric_per_case), folder=str(candidate.folder),
    )  # fmt: skip


def _task_argument(dataset: str) -> str:
    from segforge.io.layouts import task_id_of

    task_id = task_id_of(dataset)
    return str(task_id) if task_id is not None else dataset


def predict_command(run: TrainedRun, task: str, folds: list[str], output: str, probabilities: bool) -> str:
    """The ``segforge predict`` line reproducing ``run``'s cross-validated model on new images."""
    words = ["segforge predict -i INPUT_FOLDER", f"-o {output}", f"--task {task}", f"--config {run.configuration}",
             f"--trainer {run.trainer}", f"--network {run.network}", f"--plans {run.plans}",
             "--folds " + " ".join(folds)]  # fmt: skip
    if probabilities:
        words.append("--save-probabilities")
    return " ".join(words)


def postprocessing_file(candidate: Candidate) -> Path | None:
    """The postprocessing decision for the candidate, if one was determined.

    A single run's ``postprocessing.json`` lives in its run folder (``segforge predict`` applies
    it by itself); an ensemble's in ``ensembles/<name>/``, applied with ``segforge postprocess apply``.
    """
    folder = candidate.runs[0].folder if candidate.kind == "single" else candidate.folder.parent
    path = folder / POSTPROCESSING_JSON
    return path if path.is_file() else None


def commands_for(candidate: Candidate, dataset: str, folds: list[str], file_ending: str) -> list[str]:
    """The commands to predict new images with ``candidate``."""
    task = _task_argument(dataset)
    if candidate.kind == "single":
        return [predict_command(candidate.runs[0], task, folds, "OUTPUT_FOLDER", probabilities=False)]
    outputs = [f"OUTPUT_FOLDER_MODEL_{i + 1}" for i in range(len(candidate.runs))]
    commands = [predict_command(r, task, folds, o, True) for r, o in zip(candidate.runs, outputs, strict=True)]
    ending = "" if file_ending == ".nii.gz" else f" --file-ending {file_ending}"
    pp = postprocessing_file(candidate)
    target = "OUTPUT_FOLDER_ENSEMBLE" if pp else "OUTPUT_FOLDER"
    commands.append(f"segforge ensemble -i {' '.join(outputs)} -o {target}{ending}")
    if pp is not None:
        commands.append(f"segforge postprocess apply -i {target} -o OUTPUT_FOLDER --pp-json {pp}")
    return commands


def build_instructions(result: SearchResult, file_ending: str = ".nii.gz") -> InferenceInstructions:
    best = result.best
    pp = postprocessing_file(best)
    return InferenceInstructions(
        dataset=result.dataset_folder.name, folds=list(result.folds), best=ranked_entry(best),
        ranking=[ranked_entry(c) for c in result.ranking],
        skipped=[SkippedEntry(name=n, folder=str(f), reason=r) for n, f, r in result.skipped],
        postprocessing_file=None if pp is None else str(pp),
        commands=commands_for(best, result.dataset_folder.name, list(result.folds), file_ending),
    )  # fmt: skip


def instructions_text(instructions: InferenceInstructions) -> str:
    """The human-readable ``inference_instructions.txt``."""
    best = instructions.best
    dice = "-" if best.foreground_dice is None else f"{best.foreground_dice:.4f}"
    lines = [f"Best configuration for {instructions.dataset} (folds {' '.join(instructions.folds)}): {best.name}",
             f"Cross-validation mean foreground Dice: {dice} over {best.num_cases} case(s)", ""]  # fmt: skip
    if instructions.postprocessing_file and best.kind == "single":
        lines += [f"Postprocessing {instructions.postprocessing_file} is applied by segforge predict itself.", ""]
    lines += ["Run inference like this:", ""] + [f"  {c}" for c in instructions.commands]
    lines += ["", "Ranking:"] + [
        f"  {i + 1}. {e.name}: {'-' if e.foreground_dice is None else f'{e.foreground_dice:.4f}'}"
        for i, e in enumerate(instructions.ranking)
    ]
    if instructions.skipped:
        lines += ["", "Skipped:"] + [f"  {s.name}: {s.reason}" for s in instructions.skipped]
    return "\n".join(lines) + "\n"


def write_instructions(result: SearchResult, file_ending: str = ".nii.gz") -> tuple[Path, InferenceInstructions]:
    """Write ``<results>/<dataset>/inference_instructions.json`` and ``.txt`` atomically."""
    instructions = build_instructions(result, file_ending)
    path = result.dataset_folder / INSTRUCTIONS_JSON
    save_model(path, instructions)
    atomic_write_text(result.dataset_folder / INSTRUCTIONS_TXT, instructions_text(instructions))
    return path, instructions
