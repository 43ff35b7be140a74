"""Deciding from cross-validation predictions whether largest-component removal helps, and its JSON.

The rule follows nnU-Net's ``determine_postprocessing``: first, does keeping only the largest
connected component of *all foreground* raise the mean foreground Dice? Then, on the output of
that step, for each class: does keeping only that class's largest component raise that
class's Dice? A step is applied when the mean Dice with it is at least the mean without it
(a tie applies it: it removed nothing that mattered). Dice per case follows
:mod:`segforge.evaluation.metrics` (NaN when reference and prediction are both empty, left
out of means); the foreground mean is the mean over labels of the per-label means, as in
``summary.json``.

Removing a class's voxels turns them into background, so a per-class step changes only that
class's Dice: all variants are computed in one pass over the cases, each case read once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from segforge.evaluation.metrics import nanmean
from segforge.postprocessing.connected_components import keep_largest_component

POSTPROCESSING_FORMAT_VERSION = 1
POSTPROCESSING_JSON = "postprocessing.json"
Number = float | None
#: the variants each case is scored under: raw, foreground LCC, and per-class LCC on either
_VARIANTS = ("raw", "fg", "cls_raw", "cls_fg")


class ClassRule(BaseModel):
    """The per-class step for one label: its Dice without and with the class's LCC (on step (a)'s output)."""

    model_config = ConfigDict(extra="forbid")

    label: int
    applied: bool
    dice_without: Number
    dice_with: Number


class PostprocessingDecision(BaseModel):
    """``postprocessing.json``: which largest-component rules to apply, and the Dice that decided it."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = POSTPROCESSING_FORMAT_VERSION
    labels: list[int]
    foreground_lcc: bool = Field(description="keep only the largest component of all foreground labels together")
    foreground_dice_before: Number = Field(description="mean foreground Dice of the raw predictions")
    foreground_dice_with_lcc: Number = Field(description="mean foreground Dice with the foreground LCC")
    per_class: list[ClassRule] = Field(default_factory=list, description="per-class LCC, decided after step (a)")
    dice_before: dict[str, Number] = Field(description="mean Dice per label of the raw predictions")
    dice_after: dict[str, Number] = Field(description="mean Dice per label with the decided rules")
    num_cases: int
    source: str = Field("", description="the predictions the decision was made on")
    rule: str = "applied only if it raises the mean Dice (foreground step: lowering no class); face connectivity"

    def classes_applied(self) -> list[int]:
        return [r.label for r in self.per_class if r.applied]

    def describe(self) -> str:
        """One line naming the rules that apply (for logs)."""
        parts = ["largest foreground component"] if self.foreground_lcc else []
        parts += [f"largest component of label {lb}" for lb in self.classes_applied()]
        return "keep " + ", ".join(parts) if parts else "no rule applies"


def _dice(ref: np.ndarray, pred: np.ndarray, label: int) -> float:
    r, p = ref == label, pred == label
    tp = int(np.count_nonzero(r & p))
    den = int(np.count_nonzero(r)) + int(np.count_nonzero(p))
    return 2 * tp / den if den else float("nan")


def case_variants(ref: np.ndarray, pred: np.ndarray, labels: Sequence[int]) -> dict[str, dict[int, float]]:
    """Dice per label of one case under each variant (``raw``, ``fg``, ``cls_raw``, ``cls_fg``)."""
    fg = keep_largest_component(pred, labels)
    scores: dict[str, dict[int, float]] = {v: {} for v in _VARIANTS}
    for label in labels:
        scores["raw"][label] = _dice(ref, pred, label)
        scores["fg"][label] = _dice(ref, fg, label)
        scores["cls_raw"][label] = _dice(ref, keep_largest_component(pred, [label]), label)
        scores["cls_fg"][label] = _dice(ref, keep_largest_component(fg, [label]), label)
    return scores


def _none_if_nan(value: float) -> Number:
    return None if np.isnan(value) else float(value)


def _gt(after: float, before: float) -> bool:
    """A strict improvement, as nnU-Net v2 requires (a tie keeps the raw prediction)."""
    return not np.isnan(after) and (np.isnan(before) or after > before)


def _lowers_a_class(after: dict[int, float], before: dict[int, float]) -> bool:
    return any(not np.isnan(before[lb]) and (np.isnan(after[lb]) or after[lb] < before[lb]) for lb in before)


def decide(
    per_case: Sequence[dict[str, dict[int, float]]], labels: Sequence[int], source: str = ""
) -> PostprocessingDecision:
    """The decision from every case's :func:`case_variants` scores."""
    labels = [int(lb) for lb in labels]
    mean = {v: {lb: nanmean([c[v][lb] for c in per_case]) for lb in labels} for v in _VARIANTS}
    fg_before = nanmean(list(mean["raw"].values()))
    fg_after = nanmean(list(mean["fg"].values()))
    use_fg = _gt(fg_after, fg_before) and not _lowers_a_class(mean["fg"], mean["raw"])
    base, cls = ("fg", "cls_fg") if use_fg else ("raw", "cls_raw")
    rules, after = [], {}
    for lb in labels:
        applied = len(labels) > 1 and _gt(mean[cls][lb], mean[base][lb])
        if len(labels) > 1:
            rules.append(ClassRule(label=lb, applied=applied, dice_without=_none_if_nan(mean[base][lb]),
                                   dice_with=_none_if_nan(mean[cls][lb])))  # fmt: skip
        after[str(lb)] = _none_if_nan(mean[cls if applied else base][lb])
    return PostprocessingDecision(
        labels=labels, foreground_lcc=use_fg, foreground_dice_before=_none_if_nan(fg_before),
        foreground_dice_with_lcc=_none_if_nan(fg_after), per_class=rules,
        dice_before={str(lb): _none_if_nan(mean["raw"][lb]) for lb in labels}, dice_after=after,
        num_cases=len(per_case), source=source,
    )  # fmt: skip


def determine_from_arrays(
    cases: Iterable[tuple[np.ndarray, np.ndarray]], labels: Sequence[int], source: str = ""
) -> PostprocessingDecision:
    """The decision for ``(reference, prediction)`` label-map pairs (same shapes)."""
    return decide([case_variants(np.asarray(r), np.asarray(p), labels) for r, p in cases], labels, source)


def determine_from_files(
    pairs: Sequence[tuple[Path, Path]], labels: Sequence[int], image_io: object, source: str = ""
) -> PostprocessingDecision:
    """The decision for ``(reference file, prediction file)`` pairs, reading one case at a time."""

    def arrays() -> Iterable[tuple[np.ndarray, np.ndarray]]:
        for ref_file, pred_file in pairs:
            yield image_io.read_seg(ref_file)[0][0], image_io.read_seg(pred_file)[0][0]

    return determine_from_arrays(arrays(), labels, source)


def apply_postprocessing(seg: np.ndarray, decision: PostprocessingDecision) -> np.ndarray:
    """``seg`` with the decided rules applied (foreground LCC first, then each chosen class's LCC)."""
    out = keep_largest_component(seg, decision.labels) if decision.foreground_lcc else np.asarray(seg)
    for label in decision.classes_applied():
        out = keep_largest_component(out, [label])
    return out
