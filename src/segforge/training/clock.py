"""Training wall-clock time across sessions (what ``--time-budget`` counts and checkpoints store)."""

from __future__ import annotations

import os
import time


def process_age_s() -> float:
    """Seconds since this process started (Linux: from /proc), 0 where unknown.

    Lets a budget include the interpreter and import start-up that ran before any segforge code.
    """
    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            start_ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as fh:
            uptime = float(fh.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


class Clock:
    """``elapsed()`` = seconds of earlier sessions (``previous_s``) + seconds since this session started."""

    def __init__(self, previous_s: float = 0.0, started_ago_s: float = 0.0) -> None:
        self.previous_s = float(previous_s)
        self._start = time.monotonic() - float(started_ago_s)

    def session(self) -> float:
        return time.monotonic() - self._start

    def elapsed(self) -> float:
        return self.previous_s + self.session()
