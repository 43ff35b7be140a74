"""Running one function over many cases in worker processes, with a progress bar on stderr.

Conversion and verification read and write many small files; the per-case work is
independent, so a process pool uses every core. Workers are started with ``spawn``
(``forkserver`` where available) rather than ``fork`` so a parent that already loaded torch
or holds threads cannot deadlock them. With one process (or one job) everything runs inline,
which keeps tests and debugging simple.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import TypeVar

J = TypeVar("J")
R = TypeVar("R")


def _context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _progress(description: str, total: int, show: bool):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not show or not console.is_terminal,
    )


def map_cases(
    fn: Callable[[J], R], jobs: Sequence[J], num_processes: int = 2, description: str = "", show: bool = True
) -> list[R]:
    """``[fn(job) for job in jobs]`` in ``num_processes`` workers; results keep the jobs' order.

    ``fn`` must be a module-level function and should return errors as values rather than raise
    segforge errors (their hints do not survive pickling between processes).
    """
    results: list[R | None] = [None] * len(jobs)
    with _progress(description, len(jobs), show) as progress:
        task = progress.add_task(description, total=len(jobs))
        if num_processes <= 1 or len(jobs) <= 1:
            for i, job in enumerate(jobs):
                results[i] = fn(job)
                progress.advance(task)
            return results  # type: ignore[return-value]
        workers = min(num_processes, len(jobs))
        with ProcessPoolExecutor(max_workers=workers, mp_context=_context()) as pool:
            futures = {pool.submit(fn, job): i for i, job in enumerate(jobs)}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                progress.advance(task)
    return results  # type: ignore[return-value]
