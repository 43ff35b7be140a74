"""Which plans ``segforge train`` uses when ``--plans`` is not given (issue 6, gap 1).

``plan-and-preprocess --network X`` writes only ``segforgePlans__X.json``; training must find
it. Plans for a network whose data is not preprocessed yet fail with the exact command that
preprocesses it, and that command, run as printed, makes training resolve.
"""

from __future__ import annotations

import shlex

import pytest
from segforge_tiny_task import DATASET, TASK, _run_cli, make_request

from segforge.errors import ConfigError
from segforge.planning import load_plans, save_plans
from segforge.training.run_setup import resolve_run

VARIANT = "segforgePlans__residual_unet"


def _only_the_variant(task_env):
    """The preprocessed folder as `plan-and-preprocess --network residual_unet` leaves it (plans-wise)."""
    folder = task_env / "pre" / DATASET
    resolve_run(make_request(network="residual_unet"))  # re-derives and saves the variant
    (folder / "segforgePlans.json").unlink()
    return folder


def test_base_plans_still_rederive_a_variant(task_env):
    ctx = resolve_run(make_request(network="residual_unet"))
    assert ctx.plans_name == VARIANT
    assert load_plans(task_env / "pre" / DATASET / f"{VARIANT}.json").plans_name == VARIANT


def test_only_the_network_variant_exists_and_network_is_given(task_env):
    _only_the_variant(task_env)
    ctx = resolve_run(make_request(network="residual_unet"))
    assert ctx.plans_name == VARIANT
    assert ctx.configuration.network.name == "residual_unet"
    assert ctx.fold_folder.parent.name == f"default__residual_unet__{VARIANT}"
    assert f"using plans {VARIANT}: segforgePlans.json does not exist" in ctx.notes


def test_only_one_variant_exists_and_no_network_is_given(task_env):
    _only_the_variant(task_env)
    ctx = resolve_run(make_request())
    assert (ctx.plans_name, ctx.network_entry.name) == (VARIANT, "residual_unet")


def test_only_another_networks_variant_exists(task_env):
    _only_the_variant(task_env)
    with pytest.raises(ConfigError, match="no plans 'segforgePlans' for Task009_Tiny") as info:
        resolve_run(make_request(network="generic_unet"))
    assert info.value.hint == (
        f"run `segforge plan-and-preprocess --task {TASK} --network generic_unet` "
        f"(or re-derive them from existing plans: --plans {VARIANT})"
    )
    ctx = resolve_run(make_request(network="generic_unet", plans_name=VARIANT))  # the alternative, as hinted
    assert (ctx.plans_name, ctx.configuration.network.name) == (f"{VARIANT}__generic_unet", "generic_unet")


def test_several_variants_and_no_network_is_an_error_listing_them(task_env):
    folder = _only_the_variant(task_env)
    plans = load_plans(folder / f"{VARIANT}.json")
    save_plans(plans.model_copy(update={"plans_name": "segforgePlans__other"}), folder / "segforgePlans__other.json")
    with pytest.raises(ConfigError) as info:
        resolve_run(make_request())
    assert info.value.message == (
        f"no plans 'segforgePlans' for {DATASET}, but plans for several networks (other, residual_unet)"
    )
    assert f"segforge train --task {TASK} --network NAME" in info.value.hint


def test_no_plans_at_all_names_the_command_with_the_network(task_env):
    (task_env / "pre" / DATASET / "segforgePlans.json").unlink()
    with pytest.raises(ConfigError, match="no plans 'segforgePlans' for Task009_Tiny: .* does not exist") as info:
        resolve_run(make_request(network="residual_unet"))
    assert info.value.hint == f"run `segforge plan-and-preprocess --task {TASK} --network residual_unet`"


def test_unpreprocessed_variant_data_gives_the_exact_command(task_env):
    """Plans made by `plan --network` have their own data identifier, which nothing preprocessed yet."""
    folder = _only_the_variant(task_env)
    plans = load_plans(folder / f"{VARIANT}.json")
    conf = plans.configurations["3d_fullres"].model_copy(update={"data_identifier": f"{VARIANT}_3d_fullres"})
    save_plans(plans.model_copy(update={"configurations": {"3d_fullres": conf}}), folder / f"{VARIANT}.json")
    with pytest.raises(ConfigError, match=f"no preprocessed cases for configuration 3d_fullres in .*{VARIANT}_3d_f"):
        resolve_run(make_request(network="residual_unet"))
    with pytest.raises(ConfigError) as info:
        resolve_run(make_request(network="residual_unet"))
    command = info.value.hint.removeprefix("run `").removesuffix("`")
    assert command == f"segforge preprocess --task {TASK} --plans {VARIANT} --configs 3d_fullres"
    _run_cli(*shlex.split(command)[1:], "-np", "1")
    ctx = resolve_run(make_request(network="residual_unet"))
    assert ctx.data_folder.name == f"{VARIANT}_3d_fullres" and len(ctx.train_ids) == 4


def test_a_misspelt_network_is_named_before_plans_are_looked_up_by_it(task_env):
    """With only a variant on disk, a typo must not turn into "no plans 'segforgePlans'" repeating the typo."""
    from segforge.errors import ComponentNotFoundError

    _only_the_variant(task_env)
    with pytest.raises(ComponentNotFoundError, match="unknown network 'residual_unt'") as info:
        resolve_run(make_request(network="residual_unt"))
    assert "did you mean 'residual_unet'?" in info.value.hint
