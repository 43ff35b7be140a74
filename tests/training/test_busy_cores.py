"""Which cores other processes keep busy: the /proc/stat reading the budget's thread choice uses.

The 1-minute load average lagged behind a CPU hog started with the training (0.6), so the budget
ran 2 threads on a 2-core CPU with one core taken (1.2-1.45 s per step instead of ~0.9 s with 1).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from segforge import hardware

STAT_BEFORE = """cpu  300 0 100 1000 5 0 0 0 0 0
cpu0 100 0 50 500 5 0 0 0 0 0
cpu1 200 0 50 500 0 0 0 0 0 0
intr 12345
"""
STAT_AFTER = """cpu  420 0 110 1090 5 0 0 0 0 0
cpu0 200 0 55 505 5 0 0 0 0 0
cpu1 215 0 55 585 0 0 0 0 0 0
intr 12399
"""


def test_busy_jiffies_counts_the_cores_asked_for_and_not_idle_or_iowait():
    assert hardware.busy_jiffies(STAT_BEFORE, [0]) == 150 and hardware.busy_jiffies(STAT_BEFORE, [0, 1]) == 400
    assert hardware.busy_jiffies(STAT_AFTER, [0]) - hardware.busy_jiffies(STAT_BEFORE, [0]) == 105  # idle not counted
    assert hardware.busy_jiffies(STAT_AFTER, [7]) == 0  # a CPU outside the affinity set: nothing


def test_other_load_takes_the_larger_of_the_average_and_the_sample(monkeypatch):
    monkeypatch.setattr(hardware.os, "getloadavg", lambda: (0.6, 0.4, 0.3))
    monkeypatch.setattr(hardware, "busy_cores_now", lambda sample_s=0.25: 0.97)
    assert hardware.other_load() == pytest.approx(0.97)
    monkeypatch.setattr(hardware, "busy_cores_now", lambda sample_s=0.25: None)  # no /proc: the average alone
    assert hardware.other_load() == pytest.approx(0.6)


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="needs Linux /proc/stat")
def test_a_hog_that_just_started_shows_in_the_sample_not_in_the_load_average():
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        # let it start; then ~1 core is busy while this process sleeps through the sample
        subprocess.run([sys.executable, "-c", "import time; time.sleep(0.3)"], check=True)
        busy = hardware.busy_cores_now(0.5)
    finally:
        hog.kill()
        hog.wait()
    assert busy is not None and busy >= 0.6
