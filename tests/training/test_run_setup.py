"""Resolving a run: results layout, plans variants for another network, and one-line errors."""

from __future__ import annotations

import json

import pytest
from segforge_tiny_task import DATASET, TASK, make_request

from segforge.errors import ComponentNotFoundError, ConfigError, UsageError
from segforge.training.run_setup import resolve_run


def test_results_layout_and_split(task_env):
    ctx = resolve_run(make_request())
    expected = task_env / "results" / DATASET / "3d_fullres" / "default__generic_unet__segforgePlans" / "fold_0"
    assert ctx.fold_folder == expected
    assert ctx.num_classes == 3 and ctx.in_channels == 1
    assert len(ctx.train_ids) == 4 and len(ctx.val_ids) == 2 and not set(ctx.train_ids) & set(ctx.val_ids)
    splits = json.loads((task_env / "pre" / DATASET / "splits_final.json").read_text())
    assert len(splits) == 5 and splits[0]["val"] == ctx.val_ids
    everything = resolve_run(make_request(fold="all"))
    assert everything.fold_folder.name == "fold_all" and everything.train_ids == everything.val_ids
    assert len(everything.train_ids) == 6


def test_another_network_rederives_a_plans_variant_and_reuses_the_data(task_env):
    ctx = resolve_run(make_request(network="residual_unet"))
    variant = task_env / "pre" / DATASET / "segforgePlans__residual_unet.json"
    assert variant.is_file()
    assert ctx.plans_name == "segforgePlans__residual_unet"
    assert ctx.configuration.network.name == "residual_unet"
    assert ctx.data_folder.name == "segforgePlans_3d_fullres"  # the original preprocessed data
    assert ctx.fold_folder.parent.name == "default__residual_unet__segforgePlans__residual_unet"
    assert any("re-derived plans segforgePlans__residual_unet" in note for note in ctx.notes)
    again = resolve_run(make_request(network="residual_unet"))
    assert any("using plans variant" in note for note in again.notes)


@pytest.mark.parametrize(
    ("kwargs", "error", "message", "hint"),
    [
        (
            {"fold": 7},
            UsageError,
            "fold 7 does not exist in .*splits_final.json \\(available: 0, 1, 2, 3, 4, all\\)",
            "",
        ),
        ({"fold": "x"}, UsageError, "fold 'x' is not a fold number or 'all'", ""),
        ({"trainer": "defualt"}, ComponentNotFoundError, "unknown trainer 'defualt'", "did you mean 'default'"),
        ({"loss": "dc-ce"}, ComponentNotFoundError, "unknown loss 'dc-ce'", "did you mean 'dc_ce'"),
        ({"network": "generic_unte"}, ComponentNotFoundError, "unknown network 'generic_unte'", "did you mean"),
        ({"configuration": "3d_lowres"}, ConfigError, "plans 'segforgePlans' have no configuration '3d_lowres'", ""),
        ({"configuration": "2d"}, ConfigError, "no preprocessed cases for configuration 2d", "--configs 2d"),
        ({"plans_name": "otherPlans"}, ConfigError, "no plans 'otherPlans' for Task009_Tiny", "plan-and-preprocess"),
    ],
)
def test_one_line_errors(task_env, kwargs, error, message, hint):
    with pytest.raises(error, match=message) as info:
        resolve_run(make_request(**kwargs))
    assert "\n" not in info.value.message
    assert hint in (info.value.hint or "")


def test_missing_task_and_missing_preprocessed_data(task_env):
    with pytest.raises(UsageError, match="no preprocessed data for task 12") as info:
        resolve_run(make_request(task="12"))
    assert "segforge plan-and-preprocess --task 12" in info.value.hint
    for case in (task_env / "pre" / DATASET / "segforgePlans_3d_fullres").glob("*.json"):
        case.unlink()
    with pytest.raises(ConfigError, match="no preprocessed cases for configuration 3d_fullres") as info:
        resolve_run(make_request())
    assert f"segforge preprocess --task {TASK} --configs 3d_fullres" in info.value.hint
