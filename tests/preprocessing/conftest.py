"""Plans built in code for preprocessing tests (no planner needed)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from segforge.config.plans import ConfigurationPlan, IntensityStats, NetworkSpec, Plans, ResamplingSpec
from segforge.testing.plans import plans_for

CT_STATS = IntensityStats(
    mean=100.0, median=90.0, std=50.0, min=-1000.0, max=3000.0, percentile_00_5=-200.0, percentile_99_5=400.0
)


def configuration(
    name: str,
    spacing: Sequence[float],
    *,
    normalization: Sequence[str] = ("zscore",),
    use_mask: Sequence[bool] | None = None,
    data_identifier: str | None = None,
    resampling: ResamplingSpec | None = None,
) -> ConfigurationPlan:
    dims = 2 if name == "2d" else 3
    return ConfigurationPlan(
        name=name,
        data_identifier=data_identifier or f"segforgePlans_{name}",
        spacing=list(spacing),
        patch_size=[32] * dims,
        batch_size=2,
        median_image_size_in_voxels=[32.0] * dims,
        normalization=list(normalization),
        use_mask_for_norm=list(use_mask) if use_mask is not None else [False] * len(normalization),
        resampling=resampling or ResamplingSpec(),
        network=NetworkSpec(name="generic_unet", version="1.0", params={}),
    )


def plans(
    *configurations: ConfigurationPlan,
    transpose: Sequence[int] = (0, 1, 2),
    labels: dict[str, int] | None = None,
    stats: IntensityStats = CT_STATS,
    channels: int = 1,
    dataset: str = "Task099_Test",
) -> Plans:
    return plans_for(
        *configurations, stats=stats, transpose=transpose, labels=labels, channels=channels, dataset=dataset
    )


@pytest.fixture
def make_conf():
    return configuration


@pytest.fixture
def make_plans():
    return plans
