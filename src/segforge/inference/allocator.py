"""Keep freed memory in the process heap while a network runs tile after tile on the CPU.

A U-Net forward pass on a 3D patch allocates feature maps of hundreds of MB. glibc serves
blocks that large with ``mmap`` and returns them with ``munmap`` when torch frees them, so
the next tile maps them again and the kernel zero-fills every page on first touch: millions
of minor page faults per tile, a third of the CPU time in nnU-Net's predictor on this kind
of machine (BASELINES.md). Telling glibc not to use ``mmap`` for large blocks
(``M_MMAP_MAX = 0``) and not to trim the heap top (``M_TRIM_THRESHOLD``) makes freed blocks
stay in the heap, where the next tile finds them already mapped: after the first tile the
page faults drop to about zero (measured: bf16 forward 20 s -> 5 s per patch on 2 cores).

A kept heap can only grow, so what else lands in it decides the peak: a block that outlives a
tile, placed in a hole the feature maps left, splits that hole, and the next tile's maps go
above it. On the CT benchmark that took the peak from ~2.2 GB to 2.6-3.2 GB, run to run. Three
rules keep it at the first tile's extent: long-lived buffers (the logits accumulator, a tile's
sum over its mirrored or ensembled passes) are mapped on their own (:func:`mapped_zeros`); the
predictor's first forward pass, where oneDNN and OpenMP make their per-thread caches that live
as long as the process, runs before the heap is kept (``SlidingWindowPredictor``); and a
batch's logits are dropped before the next pass.

It is a process-wide allocator setting, so :func:`retain_freed_memory` restores glibc's
defaults when it exits and gives the retained memory back with ``malloc_trim``. Where the C
library is not glibc (macOS, Windows, musl) it does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import math
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
#: glibc's defaults, restored on exit
_DEFAULT_TRIM_THRESHOLD = 128 * 1024
_DEFAULT_MMAP_MAX = 65536
_NO_TRIM = 2**31 - 1


@functools.lru_cache(maxsize=1)
def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()
        return libc
    except (OSError, AttributeError):  # musl and others have no gnu_get_libc_version
        return None


def heap_reuse_available() -> bool:
    """True where :func:`retain_freed_memory` can change anything (Linux with glibc)."""
    return _glibc() is not None


_depth = 0


@contextlib.contextmanager
def retain_freed_memory(enabled: bool = True) -> Iterator[bool]:
    """Inside the block, freed large blocks stay in the heap for reuse; yields whether it is active.

    Nested uses are counted: only the outermost one restores the defaults and trims.
    """
    global _depth
    libc = _glibc() if enabled else None
    if libc is None:
        yield False
        return
    if _depth == 0:
        libc.mallopt(_M_MMAP_MAX, 0)
        libc.mallopt(_M_TRIM_THRESHOLD, _NO_TRIM)
    _depth += 1
    try:
        yield True
    finally:
        _depth -= 1
        if _depth == 0:
            libc.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
            libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM_THRESHOLD)
            libc.malloc_trim(0)


def mapped_zeros(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device | str = "cpu") -> torch.Tensor:
    """A zero tensor that outlives the tiles: on the CPU in its own anonymous memory mapping, never in the kept heap.

    (On another device, a plain ``torch.zeros`` there.)

    For buffers that live through the whole prediction (the logits accumulator). Allowing
    ``mmap`` around a ``torch.zeros`` is not enough: glibc first serves a request from a free
    block of the heap that fits, and after the first tile the heap has holes of hundreds of MB;
    a 100 MB accumulator placed in one pins it, and the next tiles' feature maps grow the heap
    past it (measured: +0.4 GB peak on the CT benchmark). The kernel's pages come zeroed, are
    touched only where tiles land, and go back to the system when the tensor is freed.
    """
    import mmap

    import torch

    if torch.device(device).type != "cpu":
        return torch.zeros(shape, dtype=dtype, device=device)
    nbytes = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
    if nbytes == 0:
        return torch.zeros(shape, dtype=dtype)
    mapping = mmap.mmap(-1, nbytes)  # anonymous, zero-filled; the tensor keeps it alive
    return torch.frombuffer(mapping, dtype=dtype).view(shape)
