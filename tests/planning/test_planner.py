"""Default planner behaviour beyond nnU-Net parity: any builder's constraints, batch caps, masks, re-deriving."""

from __future__ import annotations

import math
import warnings

import pytest
from planner_helpers import HugeBuilder, Multiple32Builder, make_fingerprint, register

from segforge.errors import ComponentNotFoundError, ConfigError, UsageError
from segforge.planning import plan_experiment, plans_name_for, rederive_plans, select_configurations
from segforge.planning.planner import DefaultPlanner, PlanningWarning
from segforge.plugins import get_registries

HIPPO = ([[1.0, 1.0, 1.0]] * 200, [[36, 50, 35]] * 200)


@pytest.fixture
def registries():
    return register(get_registries(), Multiple32Builder(), HugeBuilder())


def _accepted(registries, plans) -> None:
    for name, conf in plans.configurations.items():
        builder = registries.network.get(conf.network.name)
        constraints = builder.constraints(builder.Params.model_validate(conf.network.params))
        assert constraints.accepts(tuple(conf.patch_size)), (name, conf.patch_size)


def test_patch_honours_a_builder_that_needs_multiples_of_32(registries):
    plans = plan_experiment(make_fingerprint(*HIPPO), network="fake32", registries=registries)
    assert plans.plans_name == "segforgePlans__fake32"
    assert plans.configurations["3d_fullres"].patch_size == [64, 64, 64]  # not nnU-Net's 40 x 56 x 40
    assert plans.configurations["2d"].patch_size == [64, 64]
    _accepted(registries, plans)
    spec = plans.configurations["3d_fullres"].network
    assert (spec.plugin, spec.dist, spec.dist_version, spec.version) == ("test.fakes", "fake-nets", "0.1", "0.1")
    assert plans.plugins["fake-nets"] == "0.1" and "segforge" in plans.plugins


def test_memory_pressure_shrinks_in_accepted_steps_until_batch_two_fits(registries):
    fp = make_fingerprint([[1.0, 1.0, 1.0]] * 10, [[300, 200, 100]] * 10)
    budget_gb = 2.5
    plans = plan_experiment(fp, network="fake32", params={"gpu_memory_gb": budget_gb}, registries=registries)
    _accepted(registries, plans)
    conf = plans.configurations["3d_fullres"]
    fake = Multiple32Builder()
    assert fake.estimate_memory(None, tuple(conf.patch_size), 1, 3, 2) <= budget_gb * 2**30
    assert all(p % 32 == 0 for p in conf.patch_size)
    # the axis largest relative to the median shape shrinks first, so the aspect ratio stays close to the median's
    ratios = [p / m for p, m in zip(conf.patch_size, [300, 200, 100], strict=True)]
    assert max(ratios) - min(ratios) <= 32 / 100 + 1e-9


def test_batch_size_is_capped_at_five_percent_of_the_dataset(registries):
    fp = make_fingerprint([[1.0, 1.0, 1.0]] * 100, [[64, 64, 64]] * 100)
    conf = plan_experiment(fp, network="fake32", registries=registries).configurations["3d_fullres"]
    assert conf.patch_size == [64, 64, 64]
    assert conf.batch_size == round(100 * 64**3 * 0.05 / 64**3) == 5  # memory alone would allow hundreds


def test_batch_size_is_at_least_the_minimum(registries):
    fp = make_fingerprint([[1.0, 1.0, 1.0]] * 2, [[64, 64, 64]] * 2)  # 5% of the data is 0.1 patches
    plans = plan_experiment(fp, network="fake32", registries=registries)
    assert plans.configurations["3d_fullres"].batch_size == 2
    plans = plan_experiment(fp, network="fake32", params={"min_batch_size": 3}, registries=registries)
    assert plans.configurations["3d_fullres"].batch_size == 3


def test_a_network_that_never_fits_gets_the_smallest_accepted_patch_and_a_warning(registries):
    with pytest.warns(PlanningWarning) as record:
        plans = plan_experiment(make_fingerprint(*HIPPO), network="huge", registries=registries)
    messages = sorted(str(w.message) for w in record)
    assert len(messages) == 2 and messages[0].startswith("2d: network 'huge' needs ~")
    assert "for batch 2 even at the smallest patch [32, 32, 32], more than the 8.0 GiB budget" in messages[1]
    assert plans.configurations["3d_fullres"].patch_size == [32, 32, 32]
    _accepted(registries, plans)


def test_nonzero_mask_is_used_for_zscore_when_cropping_shrank_the_data():
    shrunk = plan_experiment(make_fingerprint(*HIPPO, channels=("T1", "CT", "nonorm"), relative_size=0.5))
    conf = shrunk.configurations["3d_fullres"]
    assert conf.normalization == ["zscore", "ct", "none"]
    assert conf.use_mask_for_norm == [True, False, False]
    full = plan_experiment(make_fingerprint(*HIPPO, channels=("T1",), relative_size=0.8))
    assert full.configurations["3d_fullres"].use_mask_for_norm == [False]


def test_2d_data_gets_only_the_2d_configuration():
    fp = make_fingerprint([[999.0, 0.5, 0.5]] * 30, [[1, 300, 280]] * 30)
    plans = plan_experiment(fp)
    assert list(plans.configurations) == ["2d"]
    assert plans.configurations["2d"].spacing == [0.5, 0.5]
    assert plans.transpose_forward == [0, 1, 2]


def test_rederive_for_another_network_keeps_geometry_and_data(registries):
    fp = make_fingerprint(*HIPPO)
    plans = plan_experiment(fp, registries=registries)
    other = rederive_plans(plans, fp, "fake32", registries=registries)
    assert other.plans_name == "segforgePlans__fake32"
    for name, conf in other.configurations.items():
        orig = plans.configurations[name]
        assert conf.network.name == "fake32"
        keep = ("spacing", "data_identifier", "normalization", "use_mask_for_norm", "median_image_size_in_voxels")
        assert {k: getattr(conf, k) for k in keep} == {k: getattr(orig, k) for k in keep}
    assert other.transpose_forward == plans.transpose_forward
    assert other.configurations["3d_fullres"].patch_size == [64, 64, 64]
    _accepted(registries, other)
    residual = rederive_plans(plans, fp, "residual_unet", registries=registries)
    assert residual.configurations["3d_fullres"].network.name == "residual_unet"
    assert residual.configurations["3d_fullres"].data_identifier == "segforgePlans_3d_fullres"
    _accepted(registries, residual)


def test_rederive_refuses_a_fingerprint_the_plans_were_not_made_from(registries):
    plans = plan_experiment(make_fingerprint(*HIPPO), registries=registries)
    other_fp = make_fingerprint([[1.0, 1.0, 1.0]] * 199, [[36, 50, 35]] * 199)
    with pytest.raises(ConfigError, match="were made from another fingerprint"):
        rederive_plans(plans, other_fp, "fake32", registries=registries)


def test_plans_names_and_planner_params_are_recorded():
    assert plans_name_for("generic_unet") == "segforgePlans"
    assert plans_name_for("swin_unetr") == "segforgePlans__swin_unetr"
    plans = plan_experiment(make_fingerprint(*HIPPO), params={"gpu_memory_gb": 4})
    assert (plans.planner, plans.planner_version) == ("default", DefaultPlanner.version)
    assert plans.planner_params["gpu_memory_gb"] == 4
    assert plans.fingerprint_digest == make_fingerprint(*HIPPO).digest()


def test_unknown_network_planner_and_bad_params_are_one_line_errors():
    fp = make_fingerprint(*HIPPO)
    with pytest.raises(ComponentNotFoundError, match=r"unknown network 'generic_unte'") as info:
        plan_experiment(fp, network="generic_unte")
    assert "did you mean 'generic_unet'" in info.value.hint
    with pytest.raises(ComponentNotFoundError, match=r"unknown planner 'nope' \(available: default\)"):
        plan_experiment(fp, planner="nope")
    with pytest.raises(ConfigError, match=r"planner 'default' params: gpu_memory_gb: Input should be greater than 0"):
        plan_experiment(fp, params={"gpu_memory_gb": 0})


def test_select_configurations_drops_dangling_cascade_links():
    fp = make_fingerprint([[1.0, 1.0, 1.0]] * 10, [[400, 400, 400]] * 10, num_labels=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plans = plan_experiment(fp)
    only = select_configurations(plans, ["3d_fullres", "3d_lowres", "3d_cascade_fullres"])
    assert list(only.configurations) == ["3d_fullres", "3d_lowres", "3d_cascade_fullres"]
    no_lowres = select_configurations(plans, ["3d_fullres", "3d_cascade_fullres"])
    assert list(no_lowres.configurations) == ["3d_fullres"]
    no_cascade = select_configurations(plans, ["3d_lowres"])
    assert no_cascade.configurations["3d_lowres"].next_stage is None
    with pytest.raises(UsageError, match="unknown configuration '3d'"):
        select_configurations(plans, ["3d"])
    assert math.prod(plans.configurations["3d_lowres"].patch_size) / 203**3 >= 0.25


def test_a_3d_only_network_gets_only_3d_configurations(registries):
    class Only3D(Multiple32Builder):
        name = "only3d"
        dims = (3,)

    register(registries, Only3D())
    fp = make_fingerprint(*HIPPO)
    with pytest.warns(PlanningWarning, match="network 'only3d' has no 2D version: no 2d configuration"):
        plans = plan_experiment(fp, network="only3d", registries=registries)
    assert list(plans.configurations) == ["3d_fullres"]
    with pytest.warns(PlanningWarning, match="no 2d configuration"):
        other = rederive_plans(plan_experiment(fp, registries=registries), fp, "only3d", registries=registries)
    assert list(other.configurations) == ["3d_fullres"]
    flat = make_fingerprint([[999.0, 0.5, 0.5]] * 30, [[1, 300, 280]] * 30)
    with pytest.warns(PlanningWarning), pytest.raises(ConfigError, match="builds no network of the dimensions"):
        plan_experiment(flat, network="only3d", registries=registries)
