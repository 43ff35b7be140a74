"""``progress.png``: loss curves, pseudo-Dice and its EMA, learning rate and epoch time.

matplotlib is an optional dependency (the ``test`` extra): without it the plot is skipped
with one warning in the training log. The Agg backend is forced so training never needs a
display; the PNG is written atomically.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from segforge.atomic import atomic_path


def preload() -> bool:
    """Import matplotlib's Agg figure machinery now (the first import takes a second or two); False if missing."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.backends.backend_agg  # noqa: F401
        import matplotlib.figure  # noqa: F401
    except ImportError:
        return False
    return True


def plot_progress(path: Path, logs: dict[str, list[Any]], warn: Callable[[str], None] | None = None) -> bool:
    """Draw the curves in ``logs`` into ``path``; False (after ``warn``) when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        from matplotlib.figure import Figure
    except ImportError:
        if warn is not None:
            warn("matplotlib is not installed: progress.png is not drawn (pip install matplotlib)")
        return False
    epochs = list(range(len(logs.get("train_loss", []))))
    fig = Figure(figsize=(10, 11), dpi=80)
    loss_ax, time_ax, lr_ax = fig.subplots(3, 1)
    loss_ax.plot(epochs, logs.get("train_loss", []), color="b", label="train loss")
    loss_ax.plot(epochs, logs.get("val_loss", []), color="r", label="val loss")
    dice_ax = loss_ax.twinx()
    mean_dice = [_nanmean(v) for v in logs.get("pseudo_dice", [])]
    dice_ax.plot(epochs, mean_dice, color="g", ls="dotted", label="pseudo Dice")
    dice_ax.plot(epochs, logs.get("ema_dice", []), color="g", label="pseudo Dice (EMA)")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("loss")
    dice_ax.set_ylabel("pseudo Dice")
    loss_ax.legend(loc="upper left")
    dice_ax.legend(loc="upper right")
    time_ax.plot(epochs, logs.get("epoch_time", []), color="b", label="epoch time [s]")
    time_ax.set_xlabel("epoch")
    time_ax.set_ylabel("time [s]")
    lr_ax.plot(epochs, logs.get("lr", []), color="b", label="learning rate (end of epoch)")
    lr_ax.set_xlabel("epoch")
    lr_ax.set_ylabel("learning rate")
    for ax in (time_ax, lr_ax):
        ax.legend(loc="upper right")
    fig.tight_layout()
    with atomic_path(path, suffix=".png", fsync=False) as tmp:
        fig.savefig(tmp, format="png")
    return True


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if v is not None and not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan
