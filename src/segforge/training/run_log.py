"""The training log (``training_log.txt`` + stderr) and the rich live progress bar.

Log lines are appended to the fold's ``training_log.txt`` and flushed at once, so a killed
run keeps every line up to its death; appending (rather than an atomic rewrite) is the
point of a log. The same lines go to stderr, above the live progress bar when stderr is a
terminal; when it is not (CI, tests, ``2> file``) there is no bar, only the lines.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class TrainingLog:
    """Timestamped lines to the log file and stderr, plus an optional per-epoch progress bar."""

    def __init__(self, path: Path, console: Console | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.console = console or Console(stderr=True, highlight=False, soft_wrap=True)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self._progress: Progress | None = None
        self._task: Any = None

    def line(self, text: str) -> None:
        stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        self._file.write(f"{stamp}: {text}\n")
        self._file.flush()
        target = self._progress.console if self._progress is not None else self.console
        target.print(f"[dim]{stamp}[/]  {escape(text)}")

    def warning(self, text: str) -> None:
        self.line(f"warning: {text}")

    # -- live progress ------------------------------------------------------------------
    def start_progress(self) -> None:
        if self._progress is not None or not self.console.is_terminal:
            return
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self._progress.start()

    def epoch_bar(self, description: str, total: int, completed: int = 0) -> None:
        if self._progress is None:
            return
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task(description, total=total, completed=completed, loss="-")

    def advance(self, loss: float) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=1, loss=f"{loss:.4f}")

    def stop_progress(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress, self._task = None, None

    def close(self) -> None:
        self.stop_progress()
        if not self._file.closed:
            self._file.close()
