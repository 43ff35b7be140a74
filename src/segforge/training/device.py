"""Device, precision, threads and allocator choices for a training run.

* ``--device auto`` picks CUDA when torch sees a GPU, else the CPU.
* Precision ``auto`` is nnU-Net's: fp16 autocast with a GradScaler on CUDA, fp32 on CPU.
  ``bf16`` autocasts convolutions to bfloat16 (about 2x the FLOP rate on CPUs with
  AVX512-BF16/AMX) while weights, optimizer and loss stay fp32; it needs no GradScaler.
* On CPU, glibc returns big freed blocks to the OS and faults them back in on the next
  iteration (a third of the CPU time in BASELINES.md). :func:`enable_memory_reuse` raises
  glibc's mmap and trim thresholds with ``mallopt`` so the allocator keeps and reuses them.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
from dataclasses import dataclass
from typing import Any

from segforge.errors import UsageError


def available_cores() -> int:
    """Cores this process may run on (affinity-aware), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def resolve_device(name: str) -> Any:
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: torch sees no CUDA device", hint="use --device cpu (or auto)")
    if name not in ("cpu", "cuda"):
        raise UsageError(f"--device {name}: unknown device", hint="use auto, cpu or cuda")
    return torch.device(name)


@dataclass(frozen=True)
class PrecisionChoice:
    """What autocast does and whether a GradScaler is needed."""

    name: str  # fp32, bf16, fp16
    device_type: str

    @property
    def autocast_dtype(self) -> Any:
        import torch

        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.name)

    @property
    def use_grad_scaler(self) -> bool:
        return self.name == "fp16"

    def autocast(self) -> Any:
        import torch

        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.autocast_dtype)


def resolve_precision(choice: str, device: Any, force_fp32: bool = False) -> PrecisionChoice:
    """``auto`` -> fp16 on CUDA, fp32 on CPU; ``--fp32`` wins over everything."""
    if force_fp32:
        return PrecisionChoice("fp32", device.type)
    if choice == "auto":
        choice = "fp16" if device.type == "cuda" else "fp32"
    if choice == "fp16" and device.type != "cuda":
        raise UsageError("precision fp16 needs CUDA", hint="use --set precision=bf16 (or fp32) on the CPU")
    return PrecisionChoice(choice, device.type)


def cpu_has_bf16() -> bool:
    """True when the CPU advertises native bfloat16 arithmetic (AVX512-BF16 or AMX)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "")
    except OSError:
        return False
    return any(f in flags.split() for f in ("avx512_bf16", "amx_bf16"))


#: set to 1 (true, yes, on) to make the time budget behave as on a CPU without native bf16
DISABLE_BF16_ENV = "SEGFORGE_DISABLE_BF16"


def bf16_disabled() -> str | None:
    """``"SEGFORGE_DISABLE_BF16=1"`` when that variable forbids bf16, else None.

    Lets the fp32 path of an AVX2-only CPU be tested and benchmarked on a CPU that has bf16.
    """
    value = os.environ.get(DISABLE_BF16_ENV, "").strip().lower()
    return f"{DISABLE_BF16_ENV}={value}" if value in ("1", "true", "yes", "on") else None


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def enable_memory_reuse(threshold_bytes: int = 1 << 30) -> bool:
    """Keep freed blocks below ``threshold_bytes`` inside glibc's heap; False where mallopt is missing."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        ok_mmap = libc.mallopt(_M_MMAP_THRESHOLD, int(threshold_bytes))
        ok_trim = libc.mallopt(_M_TRIM_THRESHOLD, int(2 * threshold_bytes))
    except (OSError, AttributeError):
        return False
    return bool(ok_mmap and ok_trim)


def set_threads(threads: int | None) -> int:
    """``torch.set_num_threads(threads)`` when given; returns the number in effect."""
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    return torch.get_num_threads()


def configure_determinism(enabled: bool) -> None:
    """Deterministic algorithms (and no cuDNN autotuning) for ``--deterministic`` runs."""
    import torch

    if not enabled:
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
