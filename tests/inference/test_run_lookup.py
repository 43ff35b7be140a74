"""``segforge predict --task N`` finds the run training made without every option (issue 6, gap 2)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from segforge.errors import UsageError
from segforge.inference.run_lookup import RunQuery, TrainedRun, choose_run, default_trainer, trained_runs
from segforge.packaging.model_source import find_model_dir

SWIN_RUN = "swin_adamw__swin_unet__segforgePlans__swin_unet"
UNET_RUN = "default__generic_unet__segforgePlans"


class _Networks:
    """The network registry as run lookup sees it: membership and the builder's recommended trainer."""

    def __init__(self, recommended: dict[str, str | None]) -> None:
        self.recommended = recommended

    def __contains__(self, name: object) -> bool:
        return name in self.recommended

    def get(self, name: str) -> SimpleNamespace:
        return SimpleNamespace(recommended_trainer=self.recommended[name])


REGISTRIES = SimpleNamespace(network=_Networks({"generic_unet": None, "swin_unet": "swin_adamw"}))


def _config_dir(tmp_path: Path, *runs: str) -> Path:
    config_dir = tmp_path / "results" / "Task004_Hippocampus" / "3d_fullres"
    for run in runs:
        (config_dir / run / "fold_all").mkdir(parents=True)
    (config_dir / "not_a_run").mkdir(parents=True, exist_ok=True)  # ignored: not trainer__network__plans
    return config_dir


def test_run_folder_names_parse_with_plans_variants():
    run = TrainedRun.parse(Path(SWIN_RUN))
    assert (run.trainer, run.network, run.plans) == ("swin_adamw", "swin_unet", "segforgePlans__swin_unet")
    assert TrainedRun.parse(Path("fold_0")) is None and TrainedRun.parse(Path("a____b")) is None


def test_network_alone_finds_the_run_of_its_recommended_trainer(tmp_path):
    config_dir = _config_dir(tmp_path, UNET_RUN, SWIN_RUN, "default__swin_unet__segforgePlans__swin_unet")
    assert [r.folder.name for r in trained_runs(config_dir)][0] == UNET_RUN
    assert choose_run(config_dir, RunQuery("3d_fullres", network="swin_unet"), REGISTRIES).name == SWIN_RUN
    chosen = choose_run(config_dir, RunQuery("3d_fullres", trainer="default", network="swin_unet"), REGISTRIES)
    assert chosen.name == "default__swin_unet__segforgePlans__swin_unet"
    assert choose_run(config_dir, RunQuery("3d_fullres"), REGISTRIES).name == UNET_RUN  # the defaults as before


def test_the_only_run_matching_the_given_options_is_used(tmp_path):
    config_dir = _config_dir(tmp_path, UNET_RUN, "swin_adamw__swin_unet__myPlans__swin_unet")
    assert choose_run(config_dir, RunQuery("3d_fullres", network="swin_unet"), REGISTRIES).name.endswith(
        "myPlans__swin_unet"
    )
    only_swin = _config_dir(tmp_path / "b", SWIN_RUN)
    assert choose_run(only_swin, RunQuery("3d_fullres"), REGISTRIES).name == SWIN_RUN  # nothing given, one run


def test_several_matches_are_an_error_listing_them(tmp_path):
    runs = ("default__swin_unet__planA__swin_unet", "other__swin_unet__planB__swin_unet")
    config_dir = _config_dir(tmp_path, UNET_RUN, *runs)
    with pytest.raises(UsageError) as info:
        choose_run(config_dir, RunQuery("3d_fullres", network="swin_unet"), REGISTRIES)
    assert info.value.message == f"2 trained models in {config_dir} match: {', '.join(runs)}"
    assert "--trainer/--network/--plans" in info.value.hint


def test_no_match_lists_what_was_trained(tmp_path):
    config_dir = _config_dir(tmp_path, UNET_RUN)
    with pytest.raises(UsageError) as info:
        choose_run(config_dir, RunQuery("3d_fullres", network="swin_unet"), REGISTRIES)
    assert info.value.message == (
        f"no trained model in {config_dir} matches --network swin_unet (trained here: {UNET_RUN})"
    )
    with pytest.raises(UsageError, match=r"matches the defaults \(trained here: nothing\)"):
        choose_run(tmp_path / "missing", RunQuery("3d_fullres"), REGISTRIES)


def test_an_uninstalled_network_falls_back_to_the_default_trainer(tmp_path):
    """The run is still found, so loading it can say which plugin to install."""
    assert default_trainer("tiny_unet", REGISTRIES) == "default"
    config_dir = _config_dir(tmp_path, "default__tiny_unet__segforgePlans__tiny_unet")
    assert choose_run(config_dir, RunQuery("3d_fullres", network="tiny_unet"), REGISTRIES).name.startswith("default")


def test_predict_finds_the_swin_run_from_task_and_network(tmp_path, monkeypatch):
    config_dir = _config_dir(tmp_path, UNET_RUN, SWIN_RUN)
    monkeypatch.setenv("SEGFORGE_RESULTS", str(tmp_path / "results"))
    found = find_model_dir("4", None, "3d_fullres", None, "swin_unet", None, REGISTRIES)
    assert found == config_dir / SWIN_RUN
    assert find_model_dir("4", None, "3d_fullres", None, None, None, REGISTRIES) == config_dir / UNET_RUN


def test_an_untrained_configuration_names_the_trained_ones(tmp_path):
    """A --time-budget run may have trained 2d: predict's default 3d_fullres then says to pass --config 2d."""
    config_dir = _config_dir(tmp_path)
    (config_dir.parent / "2d" / UNET_RUN / "fold_0").mkdir(parents=True)
    with pytest.raises(UsageError, match=r"trained here: nothing") as err:
        choose_run(config_dir, RunQuery("3d_fullres"), REGISTRIES)
    assert err.value.hint == "this task has trained models for --config 2d; pass it, or train 3d_fullres"
