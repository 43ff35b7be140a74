"""Run a command while sampling the resident memory of its whole process tree (for the benchmarks).

Shared by ``predict.py`` and ``preprocess.py``: both compare segforge with nnU-Net by wall time
and peak RSS, and worker processes count, so the children's RSS is summed with the parent's at
every sample. Needs psutil (imported lazily: the benchmarks' ``--help`` works without it).
"""

from __future__ import annotations

import subprocess
import threading
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


def run_measured(
    cmd: list[str], env: dict[str, str], log: Path, poll_s: float, line_times: list[tuple[float, str]] | None = None
) -> tuple[float, int, int]:
    """Run ``cmd`` with stdout and stderr into ``log``: (wall seconds, peak tree RSS in bytes, exit code).

    With ``line_times``, each output line is also appended to it with the seconds since the start at
    which it arrived (the child runs unbuffered), so a stage that prints when it starts (nnU-Net's
    export: "sending off prediction ...") can be timed from outside.
    """
    import psutil

    env = {**env, "PYTHONUNBUFFERED": "1"} if line_times is not None else env
    with open(log, "wb") as out:
        start = time.perf_counter()
        stdout = subprocess.PIPE if line_times is not None else out
        popen = subprocess.Popen(cmd, env=env, stdout=stdout, stderr=subprocess.STDOUT)
        reader = None
        if line_times is not None:
            reader = threading.Thread(target=_copy_lines, args=(popen.stdout, out, start, line_times), daemon=True)
            reader.start()
        proc = psutil.Process(popen.pid)
        peak = 0
        while popen.poll() is None:
            peak = max(peak, tree_rss(proc))
            time.sleep(poll_s)
        wall = time.perf_counter() - start
        if reader is not None:
            reader.join()
    return wall, peak, popen.returncode


def _copy_lines(pipe, out, start: float, line_times: list[tuple[float, str]]) -> None:  # noqa: ANN001
    for raw in iter(pipe.readline, b""):
        line_times.append((time.perf_counter() - start, raw.decode(errors="replace").rstrip("\n")))
        out.write(raw)
