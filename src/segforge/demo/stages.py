"""The demo's stages, each calling the same Python API as its ``segforge`` command, each resumable.

Every stage returns a :class:`StageResult` saying whether it did work or found it complete.
Stages run with the demo's own raw/preprocessed/results folders set in the environment by
:func:`segforge.demo.pipeline.demo_folders`, so the APIs that read ``get_folders()`` (training)
see them too.
"""

from __future__ import annotations

import filecmp
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segforge.demo.state import file_digest, files_digest, load_state, save_stamp
from segforge.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from segforge.config.plans import Plans
    from segforge.demo.pipeline import DemoOptions, DemoPaths
    from segforge.evaluation.evaluate_folder import EvaluationSummary
    from segforge.io.layouts import RawDataset

Say = Callable[[str], None]
DEMO_CONFIGURATION = "3d_fullres"
#: plans fields that differ between segforge versions without changing any decision
VERSION_FIELDS = {"segforge_version", "plugins"}


@dataclass
class StageResult:
    name: str
    status: str  # done, skipped, paused
    seconds: float
    detail: str = ""


class _Timer:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    def result(self, name: str, status: str, detail: str = "") -> StageResult:
        return StageResult(name, status, time.perf_counter() - self.start, detail)


# -- 1. convert-msd ---------------------------------------------------------------------------
def convert(options: DemoOptions, paths: DemoPaths) -> StageResult:
    """MSD folder -> raw Task folder (complete files are skipped), and the held-back labels copied."""
    from segforge.io.convert_msd import convert_msd

    timer = _Timer()
    summary = convert_msd(options.source, raw_root=paths.raw, num_processes=options.num_processes,
                          show_progress=options.show_progress)  # fmt: skip
    paths.dataset = summary.output
    copied = _copy_test_labels(Path(options.source) / "labelsTs", paths.test_labels)
    status = "done" if summary.files_written or copied else "skipped"
    return timer.result("convert-msd", status, f"{summary.line()}; {copied} test label(s) copied")


def _copy_test_labels(src: Path, dst: Path) -> int:
    from segforge.atomic import atomic_path

    if not src.is_dir():
        raise ConfigError(f"{src} does not exist: the demo needs the held-back cases' labels",
                          hint="pass a demo source folder with labelsTs/ (reference labels of imagesTs/)")  # fmt: skip
    dst.mkdir(parents=True, exist_ok=True)
    copied = 0
    for label in sorted(src.glob("*.nii.gz")):
        target = dst / label.name
        if target.is_file() and filecmp.cmp(label, target, shallow=False):
            continue
        with atomic_path(target, suffix=".nii.gz") as tmp:
            shutil.copyfile(label, tmp)
        copied += 1
    return copied


# -- 2. verify ----------------------------------------------------------------------------------
def _raw_stamp(raw: RawDataset) -> str:
    files = [raw.path / "dataset.json"]
    for case in raw.cases + raw.test_cases:
        files += [*case.images, *([case.label] if case.label is not None else [])]
    return files_digest(raw.path, [f for f in files if f.is_file()])


def verify(options: DemoOptions, paths: DemoPaths) -> StageResult:
    """``segforge verify``; skipped when the raw files are the ones verified last time."""
    from segforge.io.layouts import open_raw_dataset
    from segforge.io.verify import verify_dataset

    timer = _Timer()
    raw = open_raw_dataset(paths.dataset)
    stamp = _raw_stamp(raw)
    if load_state(paths.root).stamps.get("verify") == stamp:
        return timer.result("verify", "skipped", "raw data unchanged since it was verified")
    report = verify_dataset(raw, num_processes=options.num_processes, show_progress=options.show_progress)
    report.raise_for_errors()
    save_stamp(paths.root, "verify", stamp)
    return timer.result("verify", "done", report.summary())


# -- 3. plan-and-preprocess ---------------------------------------------------------------------
def _write_plans(plans: Plans, path: Path) -> bool:
    """Save ``plans`` unless a file with the same decisions exists; True when written."""
    from segforge.planning import load_plans, save_plans

    if path.is_file():
        try:
            old = load_plans(path).model_dump(mode="json", exclude=VERSION_FIELDS)
        except ConfigError:
            old = None
        if old == plans.model_dump(mode="json", exclude=VERSION_FIELDS):
            return False
    save_plans(plans, path)
    return True


def plan_and_preprocess(options: DemoOptions, paths: DemoPaths, say: Say) -> StageResult:
    """Fingerprint (reused while the raw data is unchanged), plans, and 3d_fullres preprocessing."""
    from segforge.io.layouts import open_raw_dataset
    from segforge.planning import ensure_fingerprint, plan_experiment, plans_path
    from segforge.preprocessing.dataset_runner import preprocess_dataset

    timer = _Timer()
    raw = open_raw_dataset(paths.dataset)
    fingerprint, reused = ensure_fingerprint(raw, paths.preprocessed, num_processes=options.num_processes,
                                             show_progress=options.show_progress)  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plans = plan_experiment(fingerprint)
    for w in caught:
        say(f"plan: {w.message}")
    paths.plans = plans_path(raw.name, plans.plans_name, paths.preprocessed)
    wrote = _write_plans(plans, paths.plans)
    paths.configuration = DEMO_CONFIGURATION if DEMO_CONFIGURATION in plans.configurations else "2d"
    summary = preprocess_dataset(raw, plans, [paths.configuration], paths.preprocessed, options.num_processes,
                                 progress=options.show_progress)  # fmt: skip
    paths.preprocessed_data = paths.preprocessed / raw.name / plans.configuration(paths.configuration).data_identifier
    status = "done" if summary.done or wrote or not reused else "skipped"
    detail = (f"{'reused' if reused else 'wrote'} fingerprint, {'wrote' if wrote else 'kept'} plans, "
              f"{summary.done} case(s) preprocessed, {summary.skipped} already complete")  # fmt: skip
    return timer.result("plan-and-preprocess", status, detail)


# -- 4. train -------------------------------------------------------------------------------------
def _run_request(options: DemoOptions, paths: DemoPaths) -> Any:
    from segforge.training.run_dir import command_line
    from segforge.training.run_setup import RunRequest

    return RunRequest(task=paths.dataset.name, fold="all", configuration=paths.configuration, network=options.network,
                      device=options.device, epochs=options.epochs,
                      iterations_per_epoch=options.iterations_per_epoch, overrides=list(options.overrides),
                      command=command_line())  # fmt: skip


def _note_other_budget(options: DemoOptions, paths: DemoPaths, say: Say) -> None:
    """Say so when a finished training had another budget than this run's --minutes (it is not redone)."""
    import json

    try:
        budget_s = json.loads((paths.fold_folder / "manifest.json").read_text(encoding="utf-8"))["budget"]["budget_s"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    if options.epochs is None and abs(budget_s / 60 - options.minutes) > 0.01 * options.minutes:
        say(f"train: this training finished with a budget of {budget_s / 60:.3g} min, not {options.minutes:g}; "
            f"to train again, delete {paths.fold_folder} or pass another --out")  # fmt: skip


def train(options: DemoOptions, paths: DemoPaths, say: Say) -> StageResult:
    """Fold ``all`` with ``--continue`` semantics; a finished run (checkpoint_final.pt) is not redone.

    A fresh run gets ``--time-budget M`` counted from the moment training starts (the request's
    ``started_ago_s`` stays 0: conversion and preprocessing before it are not training time).
    A continued run keeps the budget stored in its checkpoint and counts the time its earlier
    sessions trained.
    """
    from segforge.training.api import train as train_run
    from segforge.training.checkpoint import resumable_checkpoint
    from segforge.training.run_setup import resolve_run

    timer = _Timer()
    request = _run_request(options, paths)
    context = resolve_run(request)  # re-derives (and saves) the plans variant for another --network
    paths.fold_folder = context.fold_folder
    paths.plans = context.dataset_folder / f"{context.plans_name}.json"
    if (paths.fold_folder / "checkpoint_final.pt").is_file():
        _note_other_budget(options, paths, say)
        return timer.result("train", "skipped", f"already finished ({paths.fold_folder / 'checkpoint_final.pt'})")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = resumable_checkpoint(paths.fold_folder)
    for w in caught:
        say(f"train: {w.message}")
    request.resume = found is not None
    if found is None and options.epochs is None:
        request.time_budget_min = options.minutes
    say(f"train: {'continuing from ' + found[0].name if found else 'starting'} in {paths.fold_folder} "
        f"(log: {paths.fold_folder / 'training_log.txt'})")  # fmt: skip
    result = train_run(request, stop_after_epochs=options.stop_after_epochs)
    if result.final_pseudo_dice:  # the final validation: a better guide than the EMA of a short run
        dice = "final pseudo Dice " + ", ".join(f"{d:.3f}" for d in result.final_pseudo_dice)
    else:
        dice = "best EMA pseudo Dice " + ("-" if result.best_ema is None else f"{result.best_ema:.3f}")
    detail = f"{result.epochs} epoch(s), {result.iterations} iteration(s), {dice}"
    return timer.result("train", "done" if result.status == "finished" else result.status, detail)


# -- 5. predict -----------------------------------------------------------------------------------
def _model_stamp(paths: DemoPaths) -> str:
    return file_digest(paths.fold_folder / "checkpoint_final.pt")


def predict(options: DemoOptions, paths: DemoPaths) -> StageResult:
    """The held-back cases with the final checkpoint; predictions of another model are removed first."""
    from segforge.inference.model_loading import load_ensemble
    from segforge.inference.predictor import CasePipeline, list_jobs, run_jobs
    from segforge.inference.sliding_window import SlidingWindowSettings
    from segforge.plugins import get_registries
    from segforge.training.device import resolve_device

    timer = _Timer()
    stamp = _model_stamp(paths)
    if load_state(paths.root).stamps.get("predict") != stamp and paths.predictions.exists():
        shutil.rmtree(paths.predictions)  # made by another model (or an unknown one)
    save_stamp(paths.root, "predict", stamp)  # before predicting: an interrupted run resumes these files
    registries = get_registries()
    networks, model = load_ensemble(paths.fold_folder.parent, ["all"], "final", registries)
    image_io = registries.image_io.get(model.plans.image_io)
    jobs, skipped = list_jobs(paths.dataset / "imagesTs", paths.predictions, image_io.file_endings,
                              model.in_channels, skip_existing=True)  # fmt: skip
    if not jobs:
        return timer.result("predict", "skipped", f"{len(skipped)} case(s) already predicted")
    settings = SlidingWindowSettings(tuple(model.configuration.patch_size), step_size=0.5,
                                     mirror_axes=model.mirror_axes)  # fmt: skip
    pipeline = CasePipeline(networks, model, settings, resolve_device(options.device), registries=registries)
    results = run_jobs(pipeline, jobs, overlap=False)
    return timer.result("predict", "done", f"{len(results)} case(s) predicted, {len(skipped)} already done")


# -- 6. evaluate ----------------------------------------------------------------------------------
def _evaluation_stamp(paths: DemoPaths) -> str:
    """Which predictions were evaluated against which labels (names, sizes, modification times)."""
    files = [*paths.predictions.glob("*.nii.gz"), *paths.test_labels.glob("*.nii.gz")]
    return files_digest(paths.root, files)


def evaluate(options: DemoOptions, paths: DemoPaths) -> tuple[StageResult, EvaluationSummary]:
    """summary.json, the pictures and report.html; skipped when they exist for the current model."""
    from segforge.config.jsonio import load_model
    from segforge.evaluation.evaluate_folder import EvaluationSummary, evaluate_folder
    from segforge.evaluation.plots import write_plots
    from segforge.evaluation.report import write_report
    from segforge.io.layouts import open_raw_dataset

    timer = _Timer()
    stamp = _evaluation_stamp(paths)
    outputs = (paths.summary_json, paths.report_html)
    if load_state(paths.root).stamps.get("evaluate") == stamp and all(p.is_file() for p in outputs):
        unchanged = timer.result("evaluate", "skipped", "predictions and labels unchanged since they were evaluated")
        return unchanged, load_model(paths.summary_json, EvaluationSummary)
    names = {v: k for k, v in open_raw_dataset(paths.dataset).dataset_json.label_values().items() if v > 0}
    summary = evaluate_folder(paths.test_labels, paths.predictions, sorted(names), num_processes=options.num_processes,
                              output_file=paths.summary_json, show_progress=options.show_progress)  # fmt: skip
    plots = write_plots(summary, paths.evaluation, images_dir=paths.dataset / "imagesTs", label_names=names)
    note = (f"segforge demo: network {options.network}, configuration {paths.configuration}, fold all, "
            f"trained in {paths.fold_folder}; {len(summary.metric_per_case)} held-back test case(s).")  # fmt: skip
    write_report(summary, paths.report_html, plots=plots, progress_png=paths.fold_folder / "progress.png",
                 label_names=names, title=f"segforge demo: {paths.dataset.name}", notes=[note])  # fmt: skip
    save_stamp(paths.root, "evaluate", stamp)
    mean = summary.foreground_mean.get("dice")
    return timer.result("evaluate", "done", f"mean Dice {'-' if mean is None else f'{mean:.3f}'}"), summary
