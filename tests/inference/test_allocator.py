"""The kept heap (inference.allocator): long-lived buffers outside it, defaults restored."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from segforge.inference import allocator
from segforge.inference.allocator import mapped_zeros, retain_freed_memory


def _mapping_of(address: int) -> str:
    """The /proc/self/maps line of the mapping that holds ``address``."""
    for line in Path("/proc/self/maps").read_text().splitlines():
        span = line.split()[0]
        low, high = (int(v, 16) for v in span.split("-"))
        if low <= address < high:
            return line
    raise AssertionError(f"{address:#x} is in no mapping")


def test_mapped_zeros_is_a_zero_writable_tensor():
    t = mapped_zeros((3, 4, 5), torch.float32)
    assert t.shape == (3, 4, 5) and t.dtype == torch.float32 and not t.any()
    t[1, 2] += 2.5  # writable, in place
    assert float(t.sum()) == 12.5
    half = mapped_zeros((2, 3), torch.float16)
    assert half.dtype == torch.float16 and half.element_size() == 2 and not half.any()
    assert mapped_zeros((0, 4), torch.float32).shape == (0, 4)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps (Linux)")
def test_mapped_zeros_stays_out_of_the_kept_heap():
    # inside a kept heap a torch.zeros of this size would be served from the heap ("[heap]")
    with retain_freed_memory(True) as kept:
        t = mapped_zeros((1 << 20,), torch.float32)
        heap_zeros = torch.zeros(1 << 20)
        assert "[heap]" not in _mapping_of(t.data_ptr())
        if kept:
            assert "[heap]" in _mapping_of(heap_zeros.data_ptr())
    assert allocator._depth == 0
