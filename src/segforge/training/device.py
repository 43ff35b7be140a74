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

# the machine facts live in segforge.hardware (prediction reads them too); training code imports them from here
from segforge.hardware import (  # noqa: F401
    DISABLE_BF16_ENV,
    available_cores,
    bf16_disabled,
    cpu_has_bf16,
    other_load,
    resolve_device,
)


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
