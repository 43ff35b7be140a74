"""The training log under torchrun: rank 0 keeps ``training_log.txt``, the others print to stderr.

G processes appending to one log file would interleave G copies of every line; G live
progress bars would fight over one terminal. So rank 0 (or the only process) logs as
always, and every other rank prints its lines to stderr with a ``[rank N]`` prefix, where
torchrun passes them to the launching terminal: one sees that every rank trains, and the
log file reads like a one-process run's.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape


class RankLog:
    """The log of a rank other than 0: the :class:`~segforge.training.run_log.TrainingLog`
    interface, stderr only, no progress bar."""

    def __init__(self, rank: int, console: Console | None = None) -> None:
        self.rank = rank
        self.path: Path | None = None
        self.console = console or Console(stderr=True, highlight=False, soft_wrap=True)

    def line(self, text: str) -> None:
        stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        self.console.print(f"[dim]{stamp}[/]  {escape(f'[rank {self.rank}]')} {escape(text)}")

    def warning(self, text: str) -> None:
        self.line(f"warning: {text}")

    def start_progress(self) -> None:
        pass

    def epoch_bar(self, description: str, total: int, completed: int = 0) -> None:
        pass

    def advance(self, loss: float) -> None:
        pass

    def stop_progress(self) -> None:
        pass

    def close(self) -> None:
        pass


def open_log(run: Any, path: Path) -> Any:
    """A :class:`TrainingLog` on ``path`` for rank 0 (or one process), a :class:`RankLog` elsewhere.

    ``run`` is a :class:`segforge.training.distributed.DistributedRun`.
    """
    from segforge.training.run_log import TrainingLog

    return TrainingLog(path) if run.is_main else RankLog(run.rank)
