"""A benchmark step as a subprocess whose output goes to a log file (for the scripts that chain steps).

A failed step stops the benchmark with one line naming the log, so a long run never reports
figures computed from a step that did not finish.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path


def run(cmd: list[str], env: dict[str, str], log: Path, label: str | None = None) -> float:
    """Run ``cmd`` with stdout and stderr appended to ``log``; the wall time; SystemExit on failure.

    ``label``: what the log and the error call the step (default: the command line).
    """
    started = time.monotonic()
    with open(log, "a") as fh:
        fh.write(f"\n$ {label or ' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise SystemExit(f"{label or ' '.join(cmd[:4]) + '...'} failed (exit {proc.returncode}); see {log}")
    return time.monotonic() - started
