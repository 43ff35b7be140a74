"""Run a command while sampling the resident memory of its whole process tree (for the benchmarks).

Shared by ``predict.py`` and ``preprocess.py``: both compare segforge with nnU-Net by wall time
and peak RSS, and worker processes count, so the children's RSS is summed with the parent's at
every sample. Needs psutil (imported lazily: the benchmarks' ``--help`` works without it).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path


def tree_rss(proc) -> int:  # noqa: ANN001 - psutil.Process
    """RSS in bytes of ``proc`` and all its descendants; processes that exit meanwhile count 0."""
    import psutil

    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def run_measured(cmd: list[str], env: dict[str, str], log: Path, poll_s: float) -> tuple[float, int, int]:
    """Run ``cmd`` with stdout and stderr into ``log``: (wall seconds, peak tree RSS in bytes, exit code)."""
    import psutil

    with open(log, "wb") as out:
        start = time.perf_counter()
        popen = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        proc = psutil.Process(popen.pid)
        peak = 0
        while popen.poll() is None:
            peak = max(peak, tree_rss(proc))
            time.sleep(poll_s)
        wall = time.perf_counter() - start
    return wall, peak, popen.returncode
