"""``describe``: the topology cell ``segforge plan`` shows for swin_unet plans."""

from __future__ import annotations

from segforge_swinunet.builder import SwinUNetBuilder

from segforge.networks.builder import TopologyRequest
from segforge.networks.summary import describe_network

BUILDER = SwinUNetBuilder()


def test_describe_names_depths_heads_window_patch_and_width():
    params = BUILDER.propose(TopologyRequest((40, 56, 40), (1.0, 1.0, 1.0), 1, 3))
    assert BUILDER.describe(params) == ("3 stages: depths 2-2-2, heads 3-6-12, window 5x7x5, patch 2x2x2, embed 48")


def test_describe_takes_plans_json_params_and_2d():
    text = BUILDER.describe({"dims": 2, "depths": [2, 6], "num_heads": [4, 8], "embed_dim": 64})
    assert text == "2 stages: depths 2-6, heads 4-8, window 7x7, patch 2x2, embed 64"


def test_the_plan_table_uses_it_through_the_registry():
    from segforge.plugins import get_registries

    registries = get_registries()
    if "swin_unet" not in registries.network:  # tests run from a source tree without the entry point
        from types import SimpleNamespace

        registries = SimpleNamespace(network={"swin_unet": BUILDER})
    params = {"dims": 3, "depths": [2, 2], "num_heads": [3, 6], "window_size": [4, 4, 4], "patch_size": [1, 2, 2]}
    assert describe_network("swin_unet", params, registries).startswith("2 stages: depths 2-2, heads 3-6, window 4x4x4")
