"""nnU-Net's pseudo-Dice: per-class Dice over an epoch's validation patches, and its EMA.

TP, FP and FN of the argmax are summed over all validation batches of the epoch and only
then turned into ``2 TP / (2 TP + FP + FN)`` per foreground class, so the number is what a
Dice over the union of the patches would be. It is "pseudo" because patches, not whole
cases, are scored. The mean over classes is smoothed across epochs with an exponential
moving average (``0.9 * previous + 0.1 * current``), which decides ``checkpoint_best.pt``.
"""

from __future__ import annotations

import math

import numpy as np


class PseudoDice:
    """Accumulates TP/FP/FN per foreground class over the batches of one validation pass."""

    def __init__(self, num_foreground: int) -> None:
        self.tp = np.zeros(num_foreground, dtype=np.int64)
        self.fp = np.zeros(num_foreground, dtype=np.int64)
        self.fn = np.zeros(num_foreground, dtype=np.int64)

    def add(self, tp, fp, fn) -> None:
        self.tp += np.asarray(tp, dtype=np.int64)
        self.fp += np.asarray(fp, dtype=np.int64)
        self.fn += np.asarray(fn, dtype=np.int64)

    def per_class(self) -> list[float]:
        """Dice per foreground class; NaN for a class absent from both prediction and reference."""
        denom = 2 * self.tp + self.fp + self.fn
        return [float(2 * t / d) if d > 0 else math.nan for t, d in zip(self.tp, denom, strict=True)]

    def mean(self) -> float:
        values = [v for v in self.per_class() if not math.isnan(v)]
        return float(np.mean(values)) if values else math.nan


def ema(previous: float | None, value: float, keep: float = 0.9) -> float:
    """``keep * previous + (1 - keep) * value``; the first value (or after NaN) starts the average."""
    if previous is None or math.isnan(previous):
        return value
    if math.isnan(value):
        return previous
    return keep * previous + (1.0 - keep) * value
