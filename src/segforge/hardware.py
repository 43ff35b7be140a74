"""What this machine offers, read once for training and prediction alike: device, cores, native bf16.

bf16 autocast doubles the convolution rate only on CPUs that compute it natively
(AVX512-BF16 or AMX); elsewhere oneDNN emulates it and it can be many times *slower* than
fp32 (~24x on an AVX2-only AMD EPYC). So every automatic choice of bf16 — the time budget's
and prediction's ``--precision auto`` — asks :func:`native_bf16`, which also honours
``SEGFORGE_DISABLE_BF16=1``: that makes a bf16 machine behave as an AVX2-only one, so the fp32
path can be tested and benchmarked anywhere.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterable
from typing import Any

from segforge.errors import UsageError

#: set to 1 (true, yes, on) to make segforge behave as on a CPU without native bf16
DISABLE_BF16_ENV = "SEGFORGE_DISABLE_BF16"


def available_cores() -> int:
    """Cores this process may run on (affinity-aware), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def busy_jiffies(proc_stat: str, cpus: Iterable[int]) -> int:
    """Busy clock ticks (user, nice, system, irq, softirq, steal) of ``cpus`` in a ``/proc/stat`` text."""
    wanted = {f"cpu{c}" for c in cpus}
    total = 0
    for line in proc_stat.splitlines():
        fields = line.split()
        if fields and fields[0] in wanted:
            values = [int(v) for v in fields[1:9]] + [0] * 8
            user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
            total += user + nice + system + irq + softirq + steal
    return total


def busy_cores_now(sample_s: float = 0.25) -> float | None:
    """Cores that *other* processes keep busy right now (a ``/proc/stat`` sample); None where unreadable.

    The 1-minute load average lags: a program started a few seconds before training hardly shows
    in it (0.6 with a CPU hog running), yet it decides the thread count (one core taken on a 2-core
    CPU: 0.90 s per step with 1 thread, 1.18 s with 2). This process's own CPU time is subtracted.
    """
    try:
        cpus = sorted(os.sched_getaffinity(0))
        ticks = os.sysconf("SC_CLK_TCK")
        with open("/proc/stat", encoding="ascii") as fh:
            before = fh.read()
        own_before, started = sum(os.times()[:2]), time.monotonic()
        time.sleep(sample_s)
        with open("/proc/stat", encoding="ascii") as fh:
            after = fh.read()
        own_after, elapsed = sum(os.times()[:2]), time.monotonic() - started
    except (AttributeError, OSError, ValueError):  # not Linux, or no /proc
        return None
    busy_s = (busy_jiffies(after, cpus) - busy_jiffies(before, cpus)) / ticks
    return max(0.0, busy_s - (own_after - own_before)) / max(elapsed, 1e-6)


def other_load() -> float:
    """Cores other work keeps busy: the larger of the 1-minute load average and :func:`busy_cores_now`."""
    average = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(average, busy_cores_now() or 0.0)


def resolve_device(name: str) -> Any:
    """``auto`` -> cuda when torch sees a GPU, else cpu; ``cuda`` without one is a one-line usage error."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: torch sees no CUDA device", hint="use --device cpu (or auto)")
    if name not in ("cpu", "cuda"):
        raise UsageError(f"--device {name}: unknown device", hint="use auto, cpu or cuda")
    return torch.device(name)


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where there is none, e.g. macOS)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "")
    except OSError:
        return frozenset()
    return frozenset(flags.partition(":")[2].split())


def cpu_has_bf16() -> bool:
    """True when the CPU advertises native bfloat16 arithmetic (AVX512-BF16 or AMX)."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def bf16_disabled() -> str | None:
    """``"SEGFORGE_DISABLE_BF16=1"`` when that variable forbids bf16, else None (for messages)."""
    value = os.environ.get(DISABLE_BF16_ENV, "").strip().lower()
    return f"{DISABLE_BF16_ENV}={value}" if value in ("1", "true", "yes", "on") else None


def native_bf16() -> bool:
    """Whether automatic choices may use bf16 on the CPU: native support, and not disabled."""
    return cpu_has_bf16() and bf16_disabled() is None
