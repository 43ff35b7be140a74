"""``run_demo``: convert, verify, plan and preprocess, train, predict and evaluate the demo data.

Everything happens under one folder (``./segforge_demo`` by default) with its own
``raw/``, ``preprocessed/`` and ``results/``; the user's SEGFORGE_* folders are neither read
nor written (the variables are set for the duration of the run and restored after). Each
stage skips what is complete, so running the demo again resumes an interrupted run and a
finished one only prints its results again.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from segforge.demo import stages
from segforge.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from segforge.evaluation.evaluate_folder import EvaluationSummary

DEFAULT_OUT = Path("segforge_demo")
DEFAULT_MINUTES = 5.0
FOLDER_VARIABLES = ("SEGFORGE_RAW", "SEGFORGE_PREPROCESSED", "SEGFORGE_RESULTS")


def _silent(_: str) -> None:
    return None


@dataclass
class DemoOptions:
    """What ``segforge demo`` was asked for; the last group exists for tests (tiny, fast runs)."""

    out: Path = DEFAULT_OUT
    minutes: float = DEFAULT_MINUTES
    network: str = "generic_unet"
    device: str = "auto"
    num_processes: int = 2
    source: Path | None = None  # None: the embedded data
    show_progress: bool = True
    epochs: int | None = None  # a fixed schedule instead of the time budget
    iterations_per_epoch: int | None = None
    overrides: list[str] = field(default_factory=list)  # `segforge train --set` items
    stop_after_epochs: int | None = None  # pause training after this many epochs (resumability tests)


@dataclass
class DemoPaths:
    """Where everything goes; the later fields are filled in as the stages learn them."""

    root: Path
    dataset: Path = Path()
    plans: Path | None = None
    configuration: str = stages.DEMO_CONFIGURATION
    preprocessed_data: Path | None = None
    fold_folder: Path | None = None

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def preprocessed(self) -> Path:
        return self.root / "preprocessed"

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def test_labels(self) -> Path:
        return self.root / "test_labels"

    @property
    def predictions(self) -> Path:
        return self.root / "predictions"

    @property
    def evaluation(self) -> Path:
        return self.root / "evaluation"

    @property
    def summary_json(self) -> Path:
        return self.evaluation / "summary.json"

    @property
    def report_html(self) -> Path:
        return self.evaluation / "report.html"

    def artifacts(self) -> list[tuple[str, Path]]:
        """(what, where) for every artifact that exists, in pipeline order."""
        items: list[tuple[str, Path | None]] = [("raw dataset (converted)", self.dataset), ("plans", self.plans),
                                                ("preprocessed cases", self.preprocessed_data)]  # fmt: skip
        fold = self.fold_folder
        if fold is not None:
            items += [(f"checkpoint {name}", fold / f"checkpoint_{name}.pt") for name in ("final", "best", "latest")]
            items += [("training log", fold / "training_log.txt"), ("progress.png", fold / "progress.png"),
                      ("training manifest", fold / "manifest.json")]  # fmt: skip
        items += [("predictions", self.predictions), ("reference labels", self.test_labels),
                  ("summary.json", self.summary_json), ("pictures", self.evaluation / "plots"),
                  ("report.html", self.report_html)]  # fmt: skip
        return [(what, path) for what, path in items if path is not None and path != Path() and path.exists()]


@dataclass
class DemoResult:
    paths: DemoPaths
    stages: list[stages.StageResult]
    summary: EvaluationSummary | None = None
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return self.summary is not None


@contextlib.contextmanager
def demo_folders(paths: DemoPaths) -> Iterator[None]:
    """Point SEGFORGE_RAW/PREPROCESSED/RESULTS at the demo's folders, and restore them afterwards."""
    saved = {name: os.environ.get(name) for name in FOLDER_VARIABLES}
    values = (paths.raw, paths.preprocessed, paths.results)
    os.environ.update({name: str(value) for name, value in zip(FOLDER_VARIABLES, values, strict=True)})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def check_options(options: DemoOptions) -> None:
    """Fail on bad values before any work: minutes, processes, device, network name."""
    from segforge.plugins import get_registries
    from segforge.training.device import resolve_device

    if not (options.minutes > 0 and math.isfinite(options.minutes)):
        raise UsageError(f"--minutes {options.minutes}: must be a positive number", hint="e.g. --minutes 5")
    if options.num_processes < 1:
        raise UsageError(f"-np must be at least 1, got {options.num_processes}", hint="pass -np 1")
    resolve_device(options.device)
    get_registries().network.get(options.network)


def run_demo(options: DemoOptions, say: stages.Say = _silent) -> DemoResult:
    """Run (or resume) every stage; stops early, with ``complete`` False, when training was paused."""
    from segforge.demo import demo_data_path

    if options.source is None:
        options.source = demo_data_path()
    check_options(options)
    started = time.perf_counter()
    paths = DemoPaths(Path(options.out).expanduser().resolve())
    paths.root.mkdir(parents=True, exist_ok=True)
    done: list[stages.StageResult] = []

    def record(result: stages.StageResult) -> stages.StageResult:
        done.append(result)
        say(f"{result.name}: {result.status} ({result.seconds:.1f} s){' - ' + result.detail if result.detail else ''}")
        return result

    with demo_folders(paths):
        record(stages.convert(options, paths))
        record(stages.verify(options, paths))
        record(stages.plan_and_preprocess(options, paths, say))
        if record(stages.train(options, paths, say)).status == "paused":
            return DemoResult(paths, done, None, time.perf_counter() - started)
        record(stages.predict(options, paths))
        evaluation, summary = stages.evaluate(options, paths)
        record(evaluation)
    return DemoResult(paths, done, summary, time.perf_counter() - started)
