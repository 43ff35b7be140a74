"""End-of-training validation (nnU-Net's ``perform_actual_validation``) and ``train --validate-only``.

After the final checkpoint, each validation case of the fold is predicted with the full
predictor - sliding window with the training's mirroring, then export to the raw image's
geometry - from its *preprocessed* array and stored :class:`~segforge.data.case_store.CaseProperties`
(what nnU-Net does: no second read/preprocess of the raw images). The network is rebuilt
from ``checkpoint_final.pt``, so validation after training and ``--validate-only`` run the
same code on the same weights, with deep supervision off.

Output: ``<fold>/validation/CASE<ending>`` (the raw dataset's file ending), optionally
``CASE.npz`` + ``CASE.json`` probabilities (``--npz``), and ``summary.json`` from
:mod:`segforge.evaluation` against the raw ``labelsTr`` files. Cases already written are
skipped on a re-run (writes are atomic, so a present file is complete); the summary is always
recomputed. Fold ``all`` has no validation cases and is skipped with a log line.

In ``--time-budget`` runs the budget keeps time for this validation (and a lowres stage's
next-stage predictions): :mod:`segforge.training.prediction_cost` counts the forward passes
from the preprocessed case shapes, and the manifest shows the estimate beside the real time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segforge.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from segforge.evaluation.evaluate_folder import EvaluationSummary
    from segforge.training.protocols import Trainer
    from segforge.training.run_setup import RunContext, RunRequest

VALIDATION_FOLDER = "validation"
SUMMARY_JSON = "summary.json"


@dataclass
class ValidationResult:
    """What a validation run did: where, how many cases predicted / already present, the summary."""

    folder: Path
    predicted: int
    skipped: int
    summary: EvaluationSummary | None
    seconds: float


def _references(dataset_name: str, case_ids: list[str], log: Any) -> tuple[dict[str, Path], str | None]:
    """``{case: raw label file}`` and the raw file ending; empty (with a warning) when the raw data is gone."""
    from segforge.errors import SegforgeError
    from segforge.io.layouts import open_raw_dataset, resolve_task
    from segforge.settings import get_folders

    try:
        raw = open_raw_dataset(resolve_task(dataset_name, get_folders().raw.path))
    except SegforgeError as exc:
        log.warning(f"validation: raw dataset not found ({exc.message}); predictions are not evaluated")
        return {}, None
    labels = {c.case_id: c.label for c in raw.cases if c.label is not None and c.label.is_file()}
    missing = [cid for cid in case_ids if cid not in labels]
    if missing:
        log.warning(f"validation: no raw label for {', '.join(missing[:5])} in {raw.path}; not evaluated")
        return {}, raw.file_ending
    return labels, raw.file_ending


def _is_done(output: Path, npz: Path | None) -> bool:
    return output.is_file() and (npz is None or (npz.is_file() and npz.with_suffix(".json").is_file()))


def _predict_cases(context: RunContext, model: Any, window: Any, out: Path, ending: str, image_io: Any,
                   save_probabilities: bool) -> tuple[int, int]:  # fmt: skip
    """Predict and export every validation case not written yet; ``(predicted, skipped)``."""
    from segforge.inference.export import export_prediction, probabilities_path
    from segforge.training.cascade import network_input

    predicted = skipped = 0
    for case_id in context.val_ids:
        output = out / f"{case_id}{ending}"
        if _is_done(output, probabilities_path(output, image_io) if save_probabilities else None):
            skipped += 1
            continue
        data, props = network_input(context, case_id)  # a cascade adds the previous stage's one-hot
        logits = window.predict_logits(data)
        export_prediction(logits, props, model.plans, model.configuration, output, image_io=image_io,
                          save_probabilities=save_probabilities)  # fmt: skip
        predicted += 1
    return predicted, skipped


def evaluate_cases(
    pairs: list[tuple[str, Path, Path]],
    labels: list[int],
    ref_folder: Path,
    pred_folder: Path,
    image_io: Any,
    *,
    regions: dict[int, tuple[int, ...]] | None = None,
    ignore_label: int | None = None,
) -> EvaluationSummary:
    """A ``summary.json`` model for exactly ``pairs`` (``evaluate_folder`` would want every reference file).

    ``regions`` / ``ignore_label``: region-based scoring and unannotated voxels (see ``evaluate_pair``).
    """
    import math

    from segforge.evaluation.evaluate_folder import CaseResult, LabelResult, evaluate_pair, summarize

    def clean(value: Any) -> Any:
        return None if isinstance(value, float) and math.isnan(value) else value

    cases = []
    for case_id, ref, pred in pairs:
        scores = evaluate_pair(ref, pred, labels, image_io, regions=regions, ignore_label=ignore_label)
        metrics = {str(k): LabelResult(**{n: clean(v) for n, v in s.as_dict().items()}) for k, s in scores.items()}
        cases.append(CaseResult(case_id=case_id, reference_file=str(ref), prediction_file=str(pred), metrics=metrics))
    return summarize(cases, labels, ref_folder, pred_folder)


def validate_fold(
    context: RunContext, log: Any, *, device: Any = "cpu", save_probabilities: bool = False, registries: Any = None
) -> ValidationResult | None:
    """Predict the fold's validation cases from ``checkpoint_final.pt`` and evaluate them; None for fold all."""
    from segforge.config.jsonio import save_model
    from segforge.inference.model_loading import build_network, load_model
    from segforge.inference.sliding_window import SlidingWindowPredictor, SlidingWindowSettings
    from segforge.training import checkpoint as ckpt

    if not context.val_ids:
        log.line(f"validation: fold {context.fold} has no validation cases; end-of-training validation skipped")
        return None
    path = context.fold_folder / ckpt.FINAL
    if not path.is_file():
        raise UsageError(f"{path} not found: validation needs the final checkpoint of this fold",
                         hint="train the fold to its end first (`segforge train ...`, or add --continue)")  # fmt: skip
    if registries is None:
        from segforge.plugins import get_registries

        registries = get_registries()
    started = time.perf_counter()
    model = load_model(path)
    network = build_network(model, registries).to(device)
    image_io = registries.image_io.get(model.plans.image_io)
    refs, ending = _references(context.dataset_name, context.val_ids, log)
    ending = ending or image_io.file_endings[0]
    settings = SlidingWindowSettings(tuple(model.configuration.patch_size), mirror_axes=model.mirror_axes)
    window = SlidingWindowPredictor([network], settings, device)
    out = context.fold_folder / VALIDATION_FOLDER
    out.mkdir(parents=True, exist_ok=True)
    predicted, skipped = _predict_cases(context, model, window, out, ending, image_io, save_probabilities)
    summary = None
    if refs:
        from segforge.config.label_scheme import LabelScheme

        scheme = LabelScheme.from_plans(model.plans)  # regions scored as regions, ignore label left out
        classes = scheme.evaluation_classes()
        pairs = [(cid, refs[cid], out / f"{cid}{ending}") for cid in context.val_ids]
        summary = evaluate_cases(pairs, sorted(classes), refs[context.val_ids[0]].parent, out, image_io,
                                 regions=classes if scheme.has_regions else None,
                                 ignore_label=scheme.ignore_label)  # fmt: skip
        save_model(out / SUMMARY_JSON, summary)
    result = ValidationResult(out, predicted, skipped, summary, time.perf_counter() - started)
    _log_result(log, result)
    return result


def _log_result(log: Any, result: ValidationResult) -> None:
    counts = f"{result.predicted} case(s) predicted, {result.skipped} already there"
    log.line(f"validation: {counts} in {result.folder} ({result.seconds:.1f} s)")
    if result.summary is not None:
        dice = ", ".join(f"label {k}: {_fmt(v['dice'])}" for k, v in result.summary.mean.items())
        log.line(f"validation: mean Dice {dice}; foreground mean {_fmt(result.summary.foreground_mean['dice'])}")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def validate_after_training(trainer: Trainer) -> ValidationResult | None:
    """The end-of-training step: validation unless the trainer's ``run_validation`` param is off."""
    if not getattr(trainer.params, "run_validation", True):
        trainer.log.line("validation: skipped (run_validation=false)")
        return None
    if _secondary_rank():  # torchrun: rank 0 validates, the others would only write the same files
        return None
    if trainer.budget is not None and trainer.context.val_ids:
        estimate = trainer.budget.measurements.get("end_predictions_estimated_s")
        if estimate is not None:
            trainer.log.line(f"validation: {estimate:.0f} s of the time budget were kept for it")
    save = bool(getattr(trainer.context.request, "npz", False))
    return validate_fold(trainer.context, trainer.log, device=trainer.device, save_probabilities=save)


def _secondary_rank() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_rank() != 0


def validation_pending(fold_folder: Path) -> bool:
    """True when a finished fold has no ``validation/summary.json`` yet (a re-run should complete it)."""
    return not (Path(fold_folder) / VALIDATION_FOLDER / SUMMARY_JSON).is_file()


def validate_only(request: RunRequest, registries: Any = None) -> ValidationResult | None:
    """``segforge train ... --validate-only``: validation of an already trained fold, nothing else."""
    from segforge.training.device import resolve_device
    from segforge.training.run_dir import TRAINING_LOG
    from segforge.training.run_log import TrainingLog
    from segforge.training.run_setup import resolve_run

    context = resolve_run(request, registries)
    from segforge.training.budget_setup import continued_configuration  # without --config: where a budget trained

    context = continued_configuration(request, context, lambda r: resolve_run(r, registries), needs_checkpoint=True)
    device = resolve_device(request.device)
    if context.val_ids and not (context.fold_folder / "checkpoint_final.pt").is_file():
        raise UsageError(f"{context.fold_folder / 'checkpoint_final.pt'} not found: --validate-only needs a "
                         "finished training", hint="train the fold first (drop --validate-only; "
                         "add --continue to finish an interrupted run)")  # fmt: skip
    log = TrainingLog(context.fold_folder / TRAINING_LOG)
    try:
        log.line(f"validate-only: {context.dataset_name} {context.configuration.name} fold {context.fold}")
        return validate_fold(context, log, device=device, save_probabilities=request.npz, registries=registries)
    finally:
        log.close()
