"""The 3d_lowres -> 3d_cascade_fullres cascade on the training side.

**Writing (3d_lowres).** At the end of a 3d_lowres run (after its final checkpoint) every
validation case of the fold is predicted with the sliding window (the training's mirroring),
the logits are resampled from the lowres to the cascade's preprocessed geometry and the
argmax is stored by :mod:`segforge.data.next_stage` in the run's
``predicted_next_stage/3d_cascade_fullres/``. With the five folds trained, every training case
has a prediction made by the one model that did not train on it, so the cascade learns from
predictions with realistic errors. Fold ``all`` has no held-out cases: it writes predictions
for *all* training cases by the model trained on them - optimistic (too clean) inputs for the
cascade, a leak nnU-Net has as well; use the five folds when the cascade matters. The end of
training rewrites the fold's files; a finished run re-run with ``--continue`` writes only the
missing ones (a deleted file, an interrupted write).

**Reading (3d_cascade_fullres).** The cascade's run reads the files of the 3d_lowres run with
the same trainer, network and plans: its input channels are the image channels plus one
per foreground label (:func:`previous_stage_channels`), the dataset stacks them
(:class:`segforge.data.cascade.CascadeDataset`) and a missing file is a one-line error naming
the fold to train.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from segforge.data.next_stage import (
    IGNORE_NAME,
    cascade_values,
    is_complete,
    next_stage_folder,
    one_hot,
    previous_stage_channels,
    write_next_stage,
)
from segforge.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from segforge.config.plans import ConfigurationPlan
    from segforge.data.case_store import CaseProperties
    from segforge.training.protocols import Trainer
    from segforge.training.run_setup import RunContext


def previous_stage_folder(context: RunContext) -> Path:
    """The previous stage's ``predicted_next_stage/<this configuration>`` folder (same trainer/network/plans)."""
    run = context.fold_folder.parent
    previous = context.configuration.previous_stage
    return next_stage_folder(run.parent.parent / str(previous) / run.name, context.configuration.name)


def _fold_of(context: RunContext, case_id: str | None) -> str:
    """The fold whose validation set holds ``case_id`` (its model predicts it), or 'all' when none does."""
    from segforge.data.splits import load_splits, splits_path

    if case_id is None:
        return "F"
    path = splits_path(context.dataset_folder)
    if not path.is_file():
        return "all"
    for index, split in enumerate(load_splits(path)):
        if case_id in split.val:
            return str(index)
    return "all"


def missing_hint(context: RunContext, case_id: str | None) -> str:
    """The command that writes the previous stage's prediction of ``case_id`` (None: of any case)."""
    request, previous = context.request, context.configuration.previous_stage
    extra = "".join(f" --{k} {v}" for k, v in (("network", request.network), ("trainer", request.trainer)) if v)
    plans = "" if context.plans_name == request.plans_name == "segforgePlans" else f" --plans {context.plans_name}"
    fold = _fold_of(context, case_id)
    command = f"segforge train --task {request.task} --config {previous} --fold {fold}{extra}{plans}"
    note = "folds 0-4 cover all cases; --continue on a finished run adds missing files"
    return f"train {previous} first: `{command}` ({note})"


def open_training_dataset(context: RunContext, case_ids: list[str]) -> Any:
    """The dataset a trainer draws patches from: plain, or with the previous stage's one-hot channels."""
    from segforge.data.dataset import PreprocessedDataset

    if context.configuration.previous_stage is None:
        return PreprocessedDataset(context.data_folder, case_ids)
    from segforge.data.cascade import CascadeDataset

    return CascadeDataset(context.data_folder, case_ids, previous_stage_folder(context), cascade_values(context.plans),
                          hint_for=lambda case_id: missing_hint(context, case_id))  # fmt: skip


def network_input(context: RunContext, case_id: str) -> tuple[np.ndarray, CaseProperties]:
    """A preprocessed case as the network sees it (with one-hot previous-stage channels for a cascade)."""
    from segforge.data.case_store import read_case

    if context.configuration.previous_stage is None:
        data, _, props = read_case(context.data_folder, case_id, mmap=False)
        return data, props
    case = open_training_dataset(context, [case_id]).load(case_id)
    return np.asarray(case.data), case.props


# -- writing the next stage's inputs ------------------------------------------------------------
def _resampled_argmax(
    logits: Any, props: CaseProperties, target: CaseProperties, conf: ConfigurationPlan, values: list[int]
) -> np.ndarray:
    """Label map at ``target``'s preprocessed shape: each class's logits resampled, then a running argmax."""
    from segforge.preprocessing.resampling import resample_to_shape

    spec = conf.resampling
    best = seg = None
    for c, value in enumerate(values):
        channel = logits[c].float().cpu().numpy() if hasattr(logits, "cpu") else np.asarray(logits[c], np.float32)
        r = resample_to_shape(
            channel[None], target.shape_after_resampling, props.spacing, target.spacing, is_seg=False,
            order=spec.order_seg, order_z=spec.order_z_seg, force_separate_z=spec.force_separate_z,
            anisotropy_threshold=spec.anisotropy_threshold,
        )[0]  # fmt: skip
        if best is None:
            best, seg = np.array(r, dtype=np.float32), np.full(r.shape, value, dtype=np.int16)
            continue
        better = r > best
        seg[better] = value
        np.maximum(best, r, out=best)
    return seg


def _target_properties(context: RunContext, next_conf: ConfigurationPlan, case_id: str) -> CaseProperties:
    from segforge.data.case_store import properties_file, read_properties

    folder = context.dataset_folder / next_conf.data_identifier
    if not properties_file(folder, case_id).is_file():
        raise ConfigError(
            f"{folder}: case '{case_id}' is not preprocessed for {next_conf.name}, cannot write its next-stage input",
            hint=f"run `segforge preprocess --task {context.request.task} --configs {next_conf.name}`",
        )
    return read_properties(folder, case_id)


def next_stage_cases(context: RunContext) -> list[str]:
    """Cases the fold predicts for the next stage: its validation cases; fold ``all``: every training case."""
    return list(context.train_ids) if context.fold == "all" else list(context.val_ids)


def write_next_stage_predictions(trainer: Trainer, overwrite: bool = True) -> int:
    """Predict this fold's cases for the next stage (see the module docstring); returns how many were written.

    At the end of training every case is (re)written: files of an earlier model of this fold must
    not survive. ``overwrite=False`` (a finished run continued) writes only the missing ones.
    """
    from segforge.data.case_store import read_case
    from segforge.inference.sliding_window import SlidingWindowPredictor, SlidingWindowSettings

    context = trainer.context
    conf = context.configuration
    if conf.next_stage is None:
        return 0
    next_conf = context.plans.configuration(conf.next_stage)
    folder = next_stage_folder(context.fold_folder.parent, conf.next_stage)
    todo = [c for c in next_stage_cases(context) if overwrite or not is_complete(folder, c)]
    if not todo:
        return 0
    values = sorted({int(v) for k, v in context.plans.labels.items() if k != IGNORE_NAME})
    if len(values) != context.num_classes:
        raise ConfigError(f"{conf.name}: a cascade needs one softmax output per label, the network has "
                          f"{context.num_classes} outputs for labels {values}",
                          hint="train region-based datasets with 3d_fullres")  # fmt: skip
    settings = SlidingWindowSettings(tuple(conf.patch_size), mirror_axes=tuple(trainer.mirror_axes()) or None)
    window = SlidingWindowPredictor([trainer.network], settings, trainer.device)
    trainer.log.line(f"writing {conf.next_stage} inputs for {len(todo)} case(s) to {folder}")
    for case_id in todo:
        data, _, props = read_case(context.data_folder, case_id, mmap=False)
        target = _target_properties(context, next_conf, case_id)
        seg = _resampled_argmax(window.predict_logits(data), props, target, conf, values)
        write_next_stage(folder, case_id, seg, {"source_configuration": conf.name, "fold": str(context.fold),
                                                "data_identifier": next_conf.data_identifier})  # fmt: skip
    trainer.network.train()
    return len(todo)


__all__ = [
    "cascade_values",
    "missing_hint",
    "network_input",
    "next_stage_cases",
    "one_hot",
    "open_training_dataset",
    "previous_stage_channels",
    "previous_stage_folder",
    "write_next_stage_predictions",
]
