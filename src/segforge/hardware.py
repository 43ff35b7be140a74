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
def cpu_has_bf16() -> bool:
    """True when the CPU advertises native bfloat16 arithmetic (AVX512-BF16 or AMX)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "")
    except OSError:
        return False
    return any(f in flags.split() for f in ("avx512_bf16", "amx_bf16"))


def bf16_disabled() -> str | None:
    """``"SEGFORGE_DISABLE_BF16=1"`` when that variable forbids bf16, else None (for messages)."""
    value = os.environ.get(DISABLE_BF16_ENV, "").strip().lower()
    return f"{DISABLE_BF16_ENV}={value}" if value in ("1", "true", "yes", "on") else None


def native_bf16() -> bool:
    """Whether automatic choices may use bf16 on the CPU: native support, and not disabled."""
    return cpu_has_bf16() and bf16_disabled() is None
