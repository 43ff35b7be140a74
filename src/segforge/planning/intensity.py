"""Foreground intensity statistics, sampled exactly as nnU-Net v2 samples them but stored compactly.

nnU-Net v2 draws a fixed number of foreground voxels per case (``10e7 / number of cases``, with
replacement, ``RandomState(1234)`` re-seeded for every case, channels drawn one after the other)
and computes mean, median, std, min, max and the 0.5 / 99.5 percentiles over the pooled draws.
It ships the raw draws between processes and keeps them all in memory: 10^8 float32 values,
about 400 MB per channel, most of them repeats (a hippocampus case has a few thousand
foreground voxels and gets 500 000 draws).

segforge makes the *same* draws (same generator, same seed, same order, so the statistics are
the same up to floating point summation order) but immediately turns them into a histogram of
``(value, count)`` pairs. A case then returns at most as many pairs as it has foreground
voxels, and the pooled statistics are computed from the weighted histogram: the percentiles
with numpy's default linear interpolation over the (virtually) expanded sorted sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from segforge.config.plans import IntensityStats

#: foreground voxels sampled over the whole dataset (nnU-Net v2's ``10e7``)
TOTAL_FOREGROUND_SAMPLES = 10e7
#: nnU-Net v2's seed, used afresh for every case
SAMPLING_SEED = 1234
PERCENTILES = (0.5, 50.0, 99.5)


def samples_per_case(num_cases: int) -> int:
    """How many foreground voxels each case contributes (nnU-Net: ``int(10e7 // num_cases)``)."""
    return int(TOTAL_FOREGROUND_SAMPLES // max(num_cases, 1))


@dataclass(frozen=True)
class WeightedSamples:
    """A sample stored as sorted distinct values and how often each was drawn."""

    values: np.ndarray
    counts: np.ndarray

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    @classmethod
    def empty(cls) -> WeightedSamples:
        return cls(np.zeros(0, np.float64), np.zeros(0, np.int64))

    @classmethod
    def from_draws(cls, values: np.ndarray, counts: np.ndarray) -> WeightedSamples:
        """Merge repeated values; drops zero counts."""
        keep = counts > 0
        values, counts = values[keep], counts[keep]
        if values.size == 0:
            return cls.empty()
        uniq, inverse = np.unique(values, return_inverse=True)
        merged = np.bincount(inverse.ravel(), weights=counts, minlength=uniq.size).astype(np.int64)
        return cls(uniq, merged)


#: indices drawn per call, so a dataset of few cases (10^7+ draws each) does not need GBs of indices
DRAW_CHUNK = 1 << 22


def _draw_counts(rs: np.random.RandomState, population: int, num_samples: int) -> np.ndarray:
    """How often each of ``population`` items is drawn by ``rs.choice(items, num_samples, replace=True)``.

    ``choice`` with replacement is ``items[rs.randint(0, population, num_samples)]``, and drawing the
    indices in chunks consumes the generator exactly like one call, so the counts are exact. The
    cost is that of the generator: ~10 ns per draw, about 1 s per channel for nnU-Net's 10^8 draws
    in total, whatever the number of cases.
    """
    counts = np.zeros(population, dtype=np.int64)
    remaining = num_samples
    while remaining > 0:
        n = min(remaining, DRAW_CHUNK)
        counts += np.bincount(rs.randint(0, population, size=n), minlength=population)
        remaining -= n
    return counts


def sample_foreground(
    images: np.ndarray, foreground: np.ndarray, num_samples: int, seed: int = SAMPLING_SEED
) -> list[WeightedSamples]:
    """Per channel, ``num_samples`` draws with replacement from the voxels where ``foreground`` is true.

    ``images`` is [C, *spatial], ``foreground`` [*spatial] bool. The draws are those of
    ``RandomState(seed).choice(voxels, num_samples, replace=True)`` for channel 0, then channel 1
    from the same generator, and so on (nnU-Net v2's order). A case without foreground gives
    empty samples, as in nnU-Net.
    """
    rs = np.random.RandomState(seed)
    out = []
    for channel in images:
        voxels = channel[foreground]
        if voxels.size == 0 or num_samples <= 0:
            out.append(WeightedSamples.empty())
            continue
        out.append(WeightedSamples.from_draws(voxels, _draw_counts(rs, voxels.size, num_samples)))
    return out


def pool(samples: Sequence[WeightedSamples]) -> WeightedSamples:
    """All cases' samples of one channel as one weighted sample."""
    parts = [s for s in samples if s.values.size]
    if not parts:
        return WeightedSamples.empty()
    return WeightedSamples.from_draws(
        np.concatenate([p.values for p in parts]), np.concatenate([p.counts for p in parts])
    )


def _value_at(sample: WeightedSamples, cumulative: np.ndarray, index: int) -> float:
    """The ``index``-th element (0-based) of the expanded sorted sample."""
    return float(sample.values[np.searchsorted(cumulative, index, side="right")])


def weighted_percentile(sample: WeightedSamples, q: float) -> float:
    """``np.percentile(expanded, q)`` (linear interpolation) without expanding the sample."""
    cumulative = np.cumsum(sample.counts)
    position = q / 100.0 * (int(cumulative[-1]) - 1)
    low = int(np.floor(position))
    frac = position - low
    lower = _value_at(sample, cumulative, low)
    if frac == 0:
        return lower
    upper = _value_at(sample, cumulative, low + 1)
    return lower + (upper - lower) * frac


def statistics(sample: WeightedSamples) -> IntensityStats:
    """Mean, median, std, min, max and 0.5 / 99.5 percentiles of a pooled sample.

    An empty sample (a dataset without any foreground) gives zeros, so the plans stay valid
    JSON; nnU-Net would write NaN.
    """
    if sample.total == 0:
        return IntensityStats(mean=0, median=0, std=0, min=0, max=0, percentile_00_5=0, percentile_99_5=0)
    values = sample.values.astype(np.float64)
    weights = sample.counts.astype(np.float64)
    n = weights.sum()
    mean = float((values * weights).sum() / n)
    std = float(np.sqrt((weights * (values - mean) ** 2).sum() / n))
    low, median, high = (weighted_percentile(sample, q) for q in PERCENTILES)
    return IntensityStats(
        mean=mean,
        median=median,
        std=std,
        min=float(values[0]),
        max=float(values[-1]),
        percentile_00_5=low,
        percentile_99_5=high,
    )
