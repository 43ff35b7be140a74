"""Plans built in code, for tests that need a ``Plans`` object but not a planner run.

A preprocessing, inference or plugin test usually cares about its configurations (spacing,
patch, normalization) and maybe the axis order, labels and intensity statistics; everything
else a ``Plans`` requires (planner name, versions, fingerprint digest) is filled with fixed
placeholders here so each test suite does not spell them out again.
"""

from __future__ import annotations

from collections.abc import Sequence

from segforge.config.plans import ConfigurationPlan, IntensityStats, Plans


def plans_for(
    *configurations: ConfigurationPlan,
    stats: IntensityStats,
    transpose: Sequence[int] = (0, 1, 2),
    labels: dict[str, int] | None = None,
    channels: int = 1,
    dataset: str = "Task099_Test",
    median_shape: Sequence[float] = (32.0, 32.0, 32.0),
) -> Plans:
    """``Plans`` holding ``configurations``, with ``stats`` for each of ``channels`` input channels.

    ``transpose`` is the forward axis order (its inverse is computed); ``labels`` defaults to
    background 0, inner 1, core 2 (the hippocampus task's).
    """
    back = [list(transpose).index(i) for i in range(len(transpose))]
    return Plans(
        dataset_name=dataset,
        plans_name="segforgePlans",
        planner="test",
        planner_version="1",
        segforge_version="0",
        fingerprint_digest="none",
        transpose_forward=list(transpose),
        transpose_backward=back,
        original_median_spacing_after_transp=[1.0, 1.0, 1.0],
        original_median_shape_after_transp=[float(s) for s in median_shape],
        labels=labels or {"background": 0, "inner": 1, "core": 2},
        foreground_intensity_properties_per_channel={str(c): stats for c in range(channels)},
        configurations={c.name: c for c in configurations},
    )
