"""Preprocessing a whole raw dataset: parallel over cases, resumable, one read per case.

Layout (nnU-Net style)::

    <preprocessed>/<dataset>/<plans_name>.json           the plans (copied here if missing)
    <preprocessed>/<dataset>/<data_identifier>/CASE.*     see segforge.data.case_store

Each case is read once and written for every requested data identifier that is not already
complete (``3d_cascade_fullres`` shares ``3d_fullres``'s). A case counts as complete when
its JSON carries the current preprocessing digest and its raw files are unchanged, so an
interrupted run resumes where it stopped and changed plans redo exactly the stale cases.

Workers are long-lived processes (forked where the platform allows, so nothing is
re-imported) that each hold one :class:`CasePreprocessor`; they receive case after case,
largest first, so the pool stays busy until the end.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segforge.config.jsonio import save_model
from segforge.config.plans import Plans
from segforge.data.case_store import complete_properties, remove_temporaries, write_case
from segforge.errors import SegforgeError
from segforge.io.layouts import RawCase, RawDataset
from segforge.preprocessing.preprocessor import CasePreprocessor, source_files


@dataclass
class IdentifierSummary:
    """What happened to one data identifier's folder."""

    data_identifier: str
    configurations: list[str]
    folder: Path
    digest: str
    total: int = 0
    done: int = 0
    skipped: int = 0


@dataclass
class PreprocessSummary:
    """Returned by :func:`preprocess_dataset` (and printed by the CLI)."""

    dataset: str
    folder: Path
    plans_file: Path
    identifiers: dict[str, IdentifierSummary] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def done(self) -> int:
        return sum(s.done for s in self.identifiers.values())

    @property
    def skipped(self) -> int:
        return sum(s.skipped for s in self.identifiers.values())


DEFAULT_PLANS_NAME = "segforgePlans"


def dataset_folder(out_root: os.PathLike[str] | str, dataset_name: str) -> Path:
    """``out_root/<dataset_name>``; a root that already is the dataset's folder is taken as is."""
    root = Path(out_root)
    return root if root.name == dataset_name else root / dataset_name


def plans_file(
    preprocessed_root: os.PathLike[str] | str, dataset_name: str, plans_name: str = DEFAULT_PLANS_NAME
) -> Path:
    """Where plans live (nnU-Net style): ``<preprocessed>/<dataset>/<plans_name>.json``."""
    return dataset_folder(preprocessed_root, dataset_name) / f"{plans_name}.json"


def _is_current(folder: Path, case: RawCase, digest: str) -> bool:
    """The case is complete for ``digest`` and its JSON records the raw files exactly as they are now."""
    props = complete_properties(folder, case.case_id, digest)
    if props is None or not props.has_seg:
        return False
    inputs = [*case.images, *([case.label] if case.label is not None else [])]
    try:
        return props.source_files == source_files(inputs)
    except OSError:
        return False


# -- the work of one case (runs in a worker) -----------------------------------------------------
_WORKER: dict[str, Any] = {}


def _init_worker(pre: CasePreprocessor, folders: dict[str, Path]) -> None:
    _WORKER["pre"], _WORKER["folders"] = pre, folders


def _run_case(case: RawCase, idents: Sequence[str]) -> tuple[str, list[str]]:
    pre: CasePreprocessor = _WORKER["pre"]
    folders: dict[str, Path] = _WORKER["folders"]
    results = pre.run_files(case.images, case.label, case.case_id, idents)
    for ident, result in results.items():
        write_case(folders[ident], case.case_id, result.data, result.seg, result.props, result.class_locations)
    return case.case_id, list(results)


def _case_error(case_id: str, exc: BaseException) -> SegforgeError:
    if isinstance(exc, SegforgeError):
        return type(exc)(f"case '{case_id}': {exc.message}", hint=exc.hint)
    if isinstance(exc, BrokenProcessPool):
        return SegforgeError(
            "a preprocessing worker died (most likely out of memory)",
            hint="re-run with fewer workers (-np); finished cases are kept and skipped",
        )
    return SegforgeError(
        f"preprocessing case '{case_id}' failed: {type(exc).__name__}: {exc}",
        hint="re-run with SEGFORGE_DEBUG=1 for the traceback; finished cases are kept and skipped",
    )


# -- the dataset ------------------------------------------------------------------------------------
def _plan_work(raw: RawDataset, pre: CasePreprocessor, summary: PreprocessSummary) -> list[tuple[RawCase, list[str]]]:
    """Which data identifiers each case still needs, largest cases first."""
    todo: list[tuple[RawCase, list[str]]] = []
    for case in raw.cases:
        idents = []
        for ident, info in summary.identifiers.items():
            info.total += 1
            if _is_current(info.folder, case, info.digest):
                info.skipped += 1
            else:
                idents.append(ident)
        if idents:
            todo.append((case, idents))

    def size(item: tuple[RawCase, list[str]]) -> int:
        return sum(p.stat().st_size for p in item[0].images if p.exists())

    return sorted(todo, key=size, reverse=True)


def _mp_context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if sys.platform == "linux" and "fork" in methods else "spawn")


def _run_serial(todo: list, pre: CasePreprocessor, folders: dict[str, Path], bar: _ProgressBar) -> None:
    _init_worker(pre, folders)
    with bar:
        for case, idents in todo:
            try:
                bar.tick(*_run_case(case, idents))
            except Exception as exc:
                raise _case_error(case.case_id, exc) from exc


def _run_parallel(todo: list, pre: CasePreprocessor, folders: dict[str, Path], workers: int, bar: _ProgressBar) -> None:
    """Cases on a pool of ``workers`` processes; the first error (or Ctrl-C) stops the run, finished cases stay."""
    pool = ProcessPoolExecutor(workers, mp_context=_mp_context(), initializer=_init_worker, initargs=(pre, folders))
    try:
        # submit before the progress bar starts its thread: forked workers must not inherit threads
        pending: dict[Future, str] = {pool.submit(_run_case, case, idents): case.case_id for case, idents in todo}
        with bar:
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    case_id = pending.pop(fut)
                    if fut.exception() is not None:
                        raise _case_error(case_id, fut.exception()) from fut.exception()
                    bar.tick(*fut.result())
    finally:  # never let queued cases run on after a failure or an interrupt
        pool.shutdown(wait=True, cancel_futures=True)


def preprocess_dataset(
    raw_dataset: RawDataset,
    plans: Plans,
    configuration_names: Sequence[str] | None,
    out_root: os.PathLike[str] | str,
    num_workers: int = 1,
    *,
    progress: bool = True,
    registries: Any = None,
    part_id: int = 0,
    num_parts: int = 1,
) -> PreprocessSummary:
    """Preprocess every training case of ``raw_dataset`` for ``configuration_names`` (None: all).

    ``out_root`` is the preprocessed root (``get_folders().preprocessed.path``); cases go to
    ``out_root/<raw_dataset.name>/<data_identifier>/`` and the plans are saved beside them as
    ``<plans_name>.json`` unless that file exists. Complete, current cases are skipped.
    ``part_id``/``num_parts`` preprocess only one shard of the cases (:mod:`.shards`).
    """
    from segforge.preprocessing.shards import shard_dataset

    start = time.perf_counter()
    raw_dataset = shard_dataset(raw_dataset, part_id, num_parts)
    names = list(configuration_names) if configuration_names else list(plans.configurations)
    pre = CasePreprocessor(plans, names, registries=registries)
    folder = dataset_folder(out_root, raw_dataset.name)
    summary = PreprocessSummary(raw_dataset.name, folder, folder / f"{plans.plans_name}.json")
    for ident in pre.data_identifiers:
        confs = [n for n in names if plans.configurations[n].data_identifier == ident]
        summary.identifiers[ident] = IdentifierSummary(ident, confs, folder / ident, pre.digests[ident])
        (folder / ident).mkdir(parents=True, exist_ok=True)
        if num_parts == 1:  # a shard must not delete the half-written files of a parallel shard
            remove_temporaries(folder / ident)
    if not summary.plans_file.exists():
        save_model(summary.plans_file, plans)
    todo = _plan_work(raw_dataset, pre, summary)
    folders = {ident: info.folder for ident, info in summary.identifiers.items()}
    from segforge.preprocessing.memory_check import check_preprocess_memory

    check_preprocess_memory([case for case, _ in todo], plans, names, min(num_workers, max(len(todo), 1)))
    bar = _ProgressBar(progress, len(todo), raw_dataset.name, summary)
    if num_workers <= 1 or len(todo) <= 1:
        _run_serial(todo, pre, folders, bar)
    else:
        _run_parallel(todo, pre, folders, min(num_workers, len(todo)), bar)
    summary.seconds = time.perf_counter() - start
    return summary


class _ProgressBar:
    """Counts finished cases into the summary and shows a rich progress bar on stderr."""

    def __init__(self, enabled: bool, total: int, name: str, summary: PreprocessSummary) -> None:
        self.enabled, self.total, self.name, self.summary = enabled and total > 0, total, name, summary
        self._progress: Any = None
        self._task: Any = None

    def tick(self, case_id: str, idents: list[str]) -> None:
        for ident in idents:
            self.summary.identifiers[ident].done += 1
        if self._progress is not None:
            self._progress.advance(self._task)

    def __enter__(self) -> _ProgressBar:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("preprocessing {task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), console=Console(stderr=True),
            )  # fmt: skip
            self._progress.start()
            self._task = self._progress.add_task(self.name, total=self.total)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
