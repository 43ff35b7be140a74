"""The topology cell of ``segforge plan``'s table: a builder's ``describe`` or a generic summary (issue 6, gap 3)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from segforge.networks.summary import describe_network, fallback_summary
from segforge.plugins import get_registries


class _Described:
    """A plugin-style builder that says what its params mean."""

    def parse_params(self, params: dict) -> SimpleNamespace:
        return SimpleNamespace(**params)

    def describe(self, params: SimpleNamespace) -> str:
        return f"depths {'-'.join(map(str, params.depths))}, window {params.window}"


class _Broken(_Described):
    def describe(self, params: SimpleNamespace) -> str:
        raise RuntimeError("plugin bug")


class _Networks(dict):
    def get(self, name: str):  # the registry's lookup by name
        return self[name]


FAKE = SimpleNamespace(network=_Networks(swin=_Described(), broken=_Broken()))


def test_a_builders_describe_is_used():
    assert describe_network("swin", {"depths": [2, 2, 6], "window": 7}, FAKE) == "depths 2-2-6, window 7"


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("broken", {"strides": [[1, 1], [2, 2], [2, 2]]}, "3 stages"),  # a failing describe never breaks planning
        ("not_installed", {"features": 8, "dims": 3}, "features=8, dims=3"),
    ],
)
def test_fallbacks(name, params, expected):
    assert describe_network(name, params, FAKE) == expected


def test_builtin_unet_shows_its_stage_count():
    params = {"strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2]], "features_per_stage": [32, 64, 128, 256]}
    assert describe_network("generic_unet", params, get_registries()) == "4 stages"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"embed_dim": 48, "window_size": [5, 7, 5], "drop_path_rate": 0.1, "mlp_ratio": 4.0},
         "embed_dim=48, window_size=5x7x5, drop_path_rate=0.1"),
        ({"nested": {"a": 1}, "flag": True, "kernels": [[3, 3], [3, 3]], "width": 16}, "width=16"),
        ({"long": list(range(30))}, "-"),
        ({}, "-"),
    ],
)  # fmt: skip
def test_fallback_summary_keeps_short_flat_fields(params, expected):
    assert fallback_summary(params) == expected
