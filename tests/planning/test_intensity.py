"""Foreground intensity sampling and statistics: the same draws and numbers as nnU-Net v2's extractor."""

from __future__ import annotations

import numpy as np
import pytest

from segforge.planning import intensity
from segforge.planning.intensity import (
    WeightedSamples,
    pool,
    sample_foreground,
    samples_per_case,
    statistics,
    weighted_percentile,
)


def nnunet_style_draws(images: np.ndarray, fg: np.ndarray, n: int, seed: int = 1234) -> list[np.ndarray]:
    """What nnU-Net v2 does: one RandomState per case, choice with replacement per channel in order."""
    rs = np.random.RandomState(seed)
    return [rs.choice(c[fg], n, replace=True) if fg.any() else np.zeros(0, np.float32) for c in images]


def expand(sample: WeightedSamples) -> np.ndarray:
    return np.repeat(sample.values, sample.counts)


def test_samples_per_case_is_nnunets_budget():
    assert samples_per_case(200) == 500_000
    assert samples_per_case(20) == 5_000_000
    assert samples_per_case(3) == 33_333_333


def test_draws_are_nnunets_draws_for_every_channel():
    rng = np.random.default_rng(0)
    images = rng.normal(100, 20, (2, 6, 7, 5)).astype(np.float32)
    fg = rng.random((6, 7, 5)) > 0.6
    ours = sample_foreground(images, fg, 5000)
    ref = nnunet_style_draws(images, fg, 5000)
    for sample, drawn in zip(ours, ref, strict=True):
        assert sample.total == 5000
        np.testing.assert_array_equal(expand(sample), np.sort(drawn))


def test_chunked_drawing_gives_the_same_counts(monkeypatch):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 50, (1, 5, 5, 5)).astype(np.float32)
    fg = np.ones((5, 5, 5), bool)
    whole = sample_foreground(images, fg, 10_000)[0]
    monkeypatch.setattr(intensity, "DRAW_CHUNK", 333)
    chunked = sample_foreground(images, fg, 10_000)[0]
    np.testing.assert_array_equal(whole.values, chunked.values)
    np.testing.assert_array_equal(whole.counts, chunked.counts)


def test_no_foreground_gives_empty_samples():
    images = np.ones((2, 3, 3, 3), np.float32)
    samples = sample_foreground(images, np.zeros((3, 3, 3), bool), 100)
    assert [s.total for s in samples] == [0, 0]
    assert statistics(pool(samples)).model_dump() == dict.fromkeys(
        ("mean", "median", "std", "min", "max", "percentile_00_5", "percentile_99_5"), 0.0
    )


@pytest.mark.parametrize("q", [0.0, 0.5, 12.5, 50.0, 99.5, 100.0])
def test_weighted_percentile_equals_numpy_on_the_expanded_sample(q):
    sample = WeightedSamples.from_draws(np.array([5.0, 1.0, 3.0, 1.0, 9.0]), np.array([3, 2, 1, 4, 7]))
    assert weighted_percentile(sample, q) == pytest.approx(np.percentile(expand(sample), q), rel=1e-12)


def test_pooled_statistics_equal_numpy_over_all_draws():
    rng = np.random.default_rng(2)
    cases = []
    for _ in range(4):
        image = rng.gamma(2.0, 30.0, (1, 8, 9, 7)).astype(np.float32)
        fg = rng.random((8, 9, 7)) > 0.5
        cases.append((image, fg))
    ours = statistics(pool([sample_foreground(im, fg, 777)[0] for im, fg in cases]))
    draws = np.concatenate([nnunet_style_draws(im, fg, 777)[0] for im, fg in cases])
    low, median, high = np.percentile(draws, (0.5, 50.0, 99.5))
    assert ours.mean == pytest.approx(float(np.mean(draws.astype(np.float64))), rel=1e-9)
    assert ours.std == pytest.approx(float(np.std(draws.astype(np.float64))), rel=1e-9)
    assert (ours.min, ours.max) == (float(draws.min()), float(draws.max()))
    assert ours.median == pytest.approx(median, rel=1e-6)
    assert ours.percentile_00_5 == pytest.approx(low, rel=1e-6)
    assert ours.percentile_99_5 == pytest.approx(high, rel=1e-6)
