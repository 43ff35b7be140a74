"""Before preprocessing: refuse a case that cannot fit in memory, with the fix, instead of an OOM kill.

Runs on file headers only, so the check costs milliseconds per case and happens before any
output is written. See :mod:`segforge.resources` for the limit and the estimates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from segforge.io.header_geometry import header_geometry_for
from segforge.resources import check_memory, memory_limit, preprocess_bytes, resampled_voxels


def case_preprocess_bytes(case: Any, plans: Any, names: Sequence[str]) -> tuple[int, str] | None:
    """Bytes the largest configuration of ``case`` needs, and a description; None if the header is unreadable."""
    if not case.images or not case.images[0].is_file():
        return None
    geometry = header_geometry_for(case.images[0])
    if geometry is None:
        return None
    shape, spacing = geometry
    original = 1
    for n in shape:
        original *= n
    best: tuple[int, str] | None = None
    for name in names:
        target = plans.configurations[name].spacing
        resampled = resampled_voxels(shape, spacing, target, plans.transpose_forward)
        needed = preprocess_bytes(original, resampled, len(case.images))
        if best is None or needed > best[0]:
            best = (needed, f"{name}: {original} voxels resampled to {resampled}")
    return best


def check_preprocess_memory(cases: Sequence[Any], plans: Any, names: Sequence[str], workers: int) -> None:
    """Raise a ResourceError naming the first case whose preprocessing (times parallel workers) cannot fit."""
    limit = memory_limit()
    if limit is None:
        return
    for case in cases:
        found = case_preprocess_bytes(case, plans, names)
        if found is None:
            continue
        needed, detail = found
        fixes = "check the image's spacing in its header (a wrong spacing makes a huge resampled image)"
        if workers > 1 and needed <= limit.bytes:  # fewer workers only helps when one case fits
            fits = max(1, limit.bytes // max(needed, 1))
            fixes = f"use fewer workers (-np {fits}; {workers} cases are preprocessed at once), or " + fixes
        check_memory(needed * max(workers, 1), f"preprocessing {case.images[0].name} ({detail})", fixes)
