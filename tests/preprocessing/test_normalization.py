"""Normalization schemes against hand-computed values, and their registration as components."""

from __future__ import annotations

import numpy as np
import pytest

from segforge.config.plans import IntensityStats
from segforge.errors import ConfigError
from segforge.plugins import get_registries
from segforge.preprocessing.normalization import (
    CTNormalization,
    NoNormalization,
    RescaleTo01Normalization,
    ZScoreNormalization,
)

STATS = IntensityStats(
    mean=50.0, median=40.0, std=20.0, min=-100.0, max=500.0, percentile_00_5=0.0, percentile_99_5=100.0
)


def test_zscore_whole_image() -> None:
    image = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)  # mean 2.5, std sqrt(1.25)
    out = ZScoreNormalization().normalize(image.copy())
    expected = (np.array([[1, 2], [3, 4]]) - 2.5) / np.sqrt(1.25)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert out.dtype == np.float32


def test_zscore_in_mask_only_and_zero_outside() -> None:
    image = np.array([0.0, 2.0, 4.0, 6.0, 0.0], dtype=np.float32)
    mask = np.array([False, True, True, True, False])
    out = ZScoreNormalization().normalize(image.copy(), mask)
    std = np.sqrt(8 / 3)  # of 2, 4, 6 around mean 4
    np.testing.assert_allclose(out, [0.0, -2 / std, 0.0, 2 / std, 0.0], rtol=1e-6, atol=1e-7)


def test_zscore_mask_with_nonzero_outside_sets_it_to_zero() -> None:
    image = np.array([9.0, 1.0, 3.0], dtype=np.float32)
    out = ZScoreNormalization().normalize(image, np.array([False, True, True]))
    np.testing.assert_allclose(out, [0.0, -1.0, 1.0], rtol=1e-6)


def test_zscore_empty_mask_and_constant_image() -> None:
    assert ZScoreNormalization().normalize(np.full(4, 7.0, np.float32), np.zeros(4, bool)).tolist() == [0.0] * 4
    assert ZScoreNormalization().normalize(np.full(4, 7.0, np.float32)).tolist() == [0.0] * 4  # std 0 -> eps


def test_ct_clips_to_percentiles_then_uses_dataset_stats() -> None:
    image = np.array([-1000.0, 0.0, 50.0, 90.0, 3000.0], dtype=np.float32)
    out = CTNormalization().normalize(image.copy(), None, STATS)
    # clipped to [0, 100] -> [0, 0, 50, 90, 100], then (x - 50) / 20
    np.testing.assert_allclose(out, [-2.5, -2.5, 0.0, 2.0, 2.5])


def test_ct_ignores_mask_and_needs_stats() -> None:
    image = np.array([10.0, 70.0], dtype=np.float32)
    out = CTNormalization().normalize(image.copy(), np.array([True, False]), STATS)
    np.testing.assert_allclose(out, [-2.0, 1.0])
    with pytest.raises(ConfigError, match="normalization 'ct' needs the channel's foreground intensity statistics"):
        CTNormalization().normalize(image.copy(), None, None)


def test_none_and_rescale() -> None:
    image = np.array([2, 4, 6], dtype=np.int16)
    none = NoNormalization().normalize(image)
    assert none.dtype == np.float32 and none.tolist() == [2.0, 4.0, 6.0]
    np.testing.assert_allclose(RescaleTo01Normalization().normalize(image.astype(np.float32)), [0.0, 0.5, 1.0])
    assert RescaleTo01Normalization().normalize(np.full(3, 5.0, np.float32)).tolist() == [0.0] * 3


def test_builtin_schemes_are_registered_components() -> None:
    registry = get_registries().normalization
    assert {"zscore", "ct", "none", "rescale_0_1"} <= set(registry.names())
    entry = registry.entry("ct")
    assert entry.origin.plugin == "builtin.normalizations" and entry.origin.builtin
    assert isinstance(entry.component, CTNormalization)
    assert entry.component.Params.model_validate({}) is not None
    assert "Percentiles" in entry.summary or "percentiles" in entry.summary
