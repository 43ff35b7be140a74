"""Finding trained models and rebuilding networks from checkpoints in the trainer's layout."""

from __future__ import annotations

import pytest
import torch
from inference_helpers import make_plans, write_checkpoint

from segforge.errors import ConfigError, SegforgeError, UsageError
from segforge.inference.model_loading import (
    build_network,
    checkpoint_name,
    find_dataset_folder,
    fold_folders,
    load_ensemble,
    load_model,
    model_folder,
)

RUN = "default__generic_unet__segforgePlans"


@pytest.fixture
def run_dir(tmp_path):
    plans = make_plans((1.0, 1.0, 1.0))
    run = tmp_path / "results" / "Task099_Test" / "3d_fullres" / RUN
    write_checkpoint(run / "fold_0", plans, seed=0)
    write_checkpoint(run / "fold_1", plans, seed=1)
    write_checkpoint(run / "fold_1", plans, seed=1, name="checkpoint_best.pt")
    return run


def test_load_model_reads_plans_network_and_default_mirroring(run_dir):
    model = load_model(run_dir / "fold_0" / "checkpoint_final.pt")
    assert model.configuration.name == "3d_fullres" and model.plans.dataset_name == "Task099_Test"
    assert (model.in_channels, model.num_classes) == (1, 3)
    assert model.mirror_axes == (0, 1, 2)  # not recorded -> all axes
    net = build_network(model)
    out = net(torch.zeros(1, 1, 8, 8, 8))
    assert isinstance(out, torch.Tensor) and out.shape == (1, 3, 8, 8, 8)  # deep supervision off
    assert not net.training
    torch.testing.assert_close(net.state_dict()["decoder.seg_layers.0.weight"],
                               model.weights["decoder.seg_layers.0.weight"])  # fmt: skip


@pytest.mark.parametrize(("recorded", "expected"), [([0, 1], (0, 1)), ([], None)])
def test_mirror_axes_recorded_by_the_trainer_are_used(tmp_path, recorded, expected):
    path = write_checkpoint(tmp_path / "fold_0", make_plans((1.0, 1.0, 1.0)), mirror_axes=recorded)
    assert load_model(path).mirror_axes == expected


def test_missing_plugin_network_names_the_distribution(tmp_path):
    spec = {
        "name": "hyper_unet",
        "version": "0.3",
        "params": {},
        "in_channels": 1,
        "num_classes": 3,
        "origin": {"plugin": "hyperunet", "dist": "segforge-hyperunet", "version": "0.3.1", "builtin": False},
    }
    path = write_checkpoint(tmp_path / "fold_0", make_plans((1.0, 1.0, 1.0)), network=spec)
    with pytest.raises(ConfigError) as info:
        build_network(load_model(path))
    assert "network 'hyper_unet' from segforge-hyperunet, which is not installed" in info.value.message
    assert info.value.hint.startswith("install segforge-hyperunet (pip install segforge-hyperunet==0.3.1)")


def test_unknown_builtin_network_suggests_the_nearest(tmp_path):
    spec = {"name": "generic_unett", "params": {}, "origin": {"dist": "segforge"}}
    path = write_checkpoint(tmp_path / "fold_0", make_plans((1.0, 1.0, 1.0)), network=spec)
    with pytest.raises(ConfigError, match="network 'generic_unett' is not registered") as info:
        build_network(load_model(path))
    assert "did you mean 'generic_unet'" in info.value.hint


def test_folders_and_folds(run_dir):
    results = run_dir.parents[2]
    assert find_dataset_folder(results, "99") == results / "Task099_Test"
    assert find_dataset_folder(results, "Task099_Test") == results / "Task099_Test"
    assert model_folder(results, "099", "3d_fullres", "default", "generic_unet", "segforgePlans") == run_dir
    assert [p.name for p in fold_folders(run_dir, None)] == ["fold_0", "fold_1"]
    assert fold_folders(run_dir / "fold_1", None) == [run_dir / "fold_1"]
    with pytest.raises(UsageError, match="fold_3 not found \\(present: fold_0, fold_1\\)"):
        fold_folders(run_dir, ["0", "3"])
    with pytest.raises(UsageError, match="no trained model at .*trained here: default__generic_unet__segforgePlans"):
        model_folder(results, "99", "3d_fullres", "other", "generic_unet", "segforgePlans")
    with pytest.raises(UsageError, match="no trained model for task 5"):
        find_dataset_folder(results, "5")


def test_checkpoint_names_and_nnunet_aliases():
    assert checkpoint_name("best") == "checkpoint_best.pt"
    assert checkpoint_name("model_best") == "checkpoint_best.pt"
    assert checkpoint_name("model_final_checkpoint") == "checkpoint_final.pt"
    with pytest.raises(UsageError, match="unknown checkpoint 'newest'"):
        checkpoint_name("newest")


def test_ensemble_loads_each_fold_and_reports_missing_checkpoints(run_dir):
    nets, model = load_ensemble(run_dir, None, "final")
    assert len(nets) == 2 and model.path.parent.name == "fold_0"
    w0, w1 = (n.state_dict()["decoder.seg_layers.0.weight"] for n in nets)
    assert not torch.equal(w0, w1)  # different seeds: different folds
    with pytest.raises(
        UsageError, match="fold_0/checkpoint_best.pt not found \\(this fold has: checkpoint_final.pt\\)"
    ):
        load_ensemble(run_dir, None, "best")


def test_corrupt_checkpoint_is_a_one_line_error(tmp_path):
    path = tmp_path / "fold_0" / "checkpoint_final.pt"
    path.parent.mkdir()
    path.write_bytes(b"not a zip")
    with pytest.raises(SegforgeError, match="not a readable segforge checkpoint"):
        load_model(path)


def test_folds_trained_on_different_plans_are_refused_with_the_likely_cause(tmp_path):
    run = tmp_path / "results" / "Task099_Test" / "3d_fullres" / RUN
    write_checkpoint(run / "fold_0", make_plans((1.0, 1.0, 1.0)), seed=0)
    write_checkpoint(run / "fold_1", make_plans((2.0, 1.0, 1.0)), seed=1)  # re-planned in between
    with pytest.raises(ConfigError, match="fold_1/checkpoint_final.pt was trained with other plans than") as info:
        load_ensemble(run, None, "final")
    assert "--overwrite-plans" in info.value.message
    assert "retrain the older fold(s)" in info.value.hint
    nets, _ = load_ensemble(run, ["1"], "final")  # one fold alone is fine
    assert len(nets) == 1


def test_nnunet_checkpoint_file_names_are_accepted():
    from segforge.inference.model_loading import checkpoint_name

    assert checkpoint_name("checkpoint_final.pth") == checkpoint_name("final")
    assert checkpoint_name("checkpoint_best.pth") == checkpoint_name("model_best") == checkpoint_name("best")
