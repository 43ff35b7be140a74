"""``model-card.json``: what someone receiving a model package needs to judge it.

Data (dataset name, channels, labels, number of training cases), task and configuration,
cross-validation metrics where the folds' ``validation/summary.json`` exist (never invented:
absent metrics are ``null`` with the reason), the licence the exporter chose and optional
authors/description. Built from files of the run only, so the same run exports the same card.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

MODEL_CARD_FORMAT_VERSION = 1


class FoldMetrics(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fold: str
    num_cases: int
    dice_per_label: dict[str, float | None]
    foreground_dice: float | None


class ModelCard(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format_version: int = MODEL_CARD_FORMAT_VERSION
    dataset: str
    description: str | None = None
    authors: list[str] = []
    licence: str | None = None
    channels: dict[str, str]
    labels: dict[str, Any]
    train_cases: int | None
    configuration: str
    network: str
    trainer: str
    plans: str
    folds: list[str]
    checkpoint: str
    patch_size: list[int]
    spacing: list[float]
    validation: list[FoldMetrics]
    validation_note: str


def _fold_metrics(fold_dir: Path) -> FoldMetrics | None:
    from segforge.training.validation import SUMMARY_JSON, VALIDATION_FOLDER

    path = fold_dir / VALIDATION_FOLDER / SUMMARY_JSON
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    dice = {label: values.get("dice") for label, values in (data.get("mean") or {}).items()}
    foreground = (data.get("foreground_mean") or {}).get("dice")
    return FoldMetrics(fold=fold_dir.name.removeprefix("fold_"), num_cases=len(data.get("metric_per_case") or []),
                       dice_per_label=dice, foreground_dice=foreground)  # fmt: skip


def build_model_card(
    *,
    model: Any,
    run: Any,
    fold_dirs: list[Path],
    checkpoint: str,
    dataset_json: dict[str, Any] | None,
    fold_manifest: dict[str, Any] | None,
    licence: str | None,
    authors: list[str],
    description: str | None,
) -> ModelCard:
    """The card for ``model`` (a LoadedModel) of ``run`` (a TrainedRun) exported with ``fold_dirs``."""
    metrics = [m for m in (_fold_metrics(d) for d in fold_dirs) if m is not None]
    missing = len(fold_dirs) - len(metrics)
    note = "validation summaries of every exported fold" if not missing else (
        f"{missing} of {len(fold_dirs)} exported fold(s) have no validation/summary.json (not validated)")  # fmt: skip
    channels = (dataset_json or {}).get("channel_names") or (dataset_json or {}).get("modality") or {}
    conf = model.configuration
    return ModelCard(
        dataset=model.plans.dataset_name,
        description=description, authors=authors, licence=licence,
        channels={str(k): str(v) for k, v in channels.items()},
        labels=dict(model.plans.labels),
        train_cases=(fold_manifest or {}).get("train_cases"),
        configuration=conf.name, network=run.network, trainer=run.trainer, plans=run.plans,
        folds=[d.name.removeprefix("fold_") for d in fold_dirs], checkpoint=checkpoint,
        patch_size=list(conf.patch_size), spacing=[float(s) for s in conf.spacing],
        validation=metrics, validation_note=note,
    )  # fmt: skip
