"""Checkpoint contents: weights_only loading, everything needed to rebuild the model, resume candidates."""

from __future__ import annotations

import json

import pytest
import torch
from segforge_tiny_task import DATASET, fold_dir, make_request

import segforge
from segforge.config.plans import Plans
from segforge.training.api import train
from segforge.training.checkpoint import (
    CHECKPOINT_KEYS,
    CheckpointError,
    CheckpointWarning,
    load_checkpoint,
    resumable_checkpoint,
)


@pytest.fixture
def trained(task_env):
    result = train(make_request())
    return task_env, result


def test_a_finished_run_leaves_best_and_final_and_drops_latest(trained):
    root, result = trained
    folder = fold_dir(root)
    assert result.status == "finished" and result.epochs == 2 and result.iterations == 4
    assert result.checkpoints == ["checkpoint_best.pt", "checkpoint_final.pt"]
    assert not (folder / "checkpoint_latest.pt").exists()
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_checkpoint_loads_weights_only_and_holds_plain_data(trained):
    root, _ = trained
    payload = torch.load(fold_dir(root) / "checkpoint_final.pt", weights_only=True)
    assert set(CHECKPOINT_KEYS) <= set(payload)
    assert payload["progress"]["iteration"] == 4 and payload["progress"]["epoch"] == 2
    assert payload["progress"]["finished"] is True
    assert payload["configuration"] == "3d_fullres" and payload["seed"] == 12345
    assert payload["trainer"]["name"] == "default" and payload["trainer"]["params"]["epochs"] == 2
    assert payload["loss"]["name"] == "dc_ce"
    assert len(payload["logs"]["train_loss"]) == 2 and len(payload["logs"]["pseudo_dice"][0]) == 2
    assert payload["optimizer_state"]["param_groups"][0]["momentum"] == 0.99
    assert payload["schedule"]["kind"] == "poly" and payload["schedule"]["total"] == 4
    assert payload["mirror_axes"] == [0, 1, 2]  # trained with mirroring on every axis: prediction may mirror all
    rng = payload["rng"]
    assert isinstance(rng["numpy"]["keys"], torch.Tensor) and rng["numpy"]["keys"].numel() == 624
    assert isinstance(rng["python"]["state"], torch.Tensor) and rng["python"]["state"].numel() == 625
    assert {p["name"] for p in payload["versions"]["plugins"]} >= {"builtin.trainers", "builtin.losses"}


def test_the_model_can_be_rebuilt_from_the_checkpoint_alone(trained):
    root, _ = trained
    payload = load_checkpoint(fold_dir(root) / "checkpoint_final.pt")
    plans = Plans.model_validate_json(payload["plans_json"])
    assert plans.dataset_name == DATASET
    spec = payload["network"]
    assert spec["origin"]["plugin"] == "builtin.networks" and spec["params"]["features_per_stage"] == [4, 8, 16]
    net = segforge.build_network(
        spec["name"], spec["params"], in_channels=spec["in_channels"], num_classes=spec["num_classes"]
    )
    net.load_state_dict(payload["network_weights"])
    with torch.no_grad():
        out = net(torch.zeros(1, 1, *plans.configurations["3d_fullres"].patch_size))
    assert out[0].shape == (1, 3, 16, 20, 20)


def test_truncated_and_foreign_files_are_refused(tmp_path, trained):
    root, _ = trained
    good = (fold_dir(root) / "checkpoint_final.pt").read_bytes()
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="truncated.pt: not a readable segforge checkpoint"):
        load_checkpoint(bad)
    pickled = tmp_path / "pickled.pt"
    torch.save({"x": object.__new__(json.JSONDecoder)}, pickled)  # an arbitrary object: needs pickle
    with pytest.raises(CheckpointError, match="pickled.pt: not a readable segforge checkpoint"):
        load_checkpoint(pickled)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(1)}, foreign)
    with pytest.raises(CheckpointError, match="foreign.pt: not a segforge checkpoint \\(missing format_version"):
        load_checkpoint(foreign)


def test_resume_candidate_is_the_most_advanced_valid_checkpoint(trained):
    root, _ = trained
    folder = fold_dir(root)
    (folder / "checkpoint_latest.pt").write_bytes(b"PK\x03\x04 broken")
    with pytest.warns(CheckpointWarning, match="skipping .*checkpoint_latest.pt"):
        path, payload = resumable_checkpoint(folder)
    assert path.name == "checkpoint_final.pt" and payload["progress"]["iteration"] == 4
    (folder / "checkpoint_final.pt").unlink()
    (folder / "checkpoint_best.pt").write_bytes(b"")
    with pytest.warns(CheckpointWarning):
        assert resumable_checkpoint(folder) is None


def test_pretrained_weights_copy_everything_but_the_segmentation_heads(trained):
    root, _ = trained
    source = fold_dir(root) / "checkpoint_final.pt"
    train(make_request(fold=1, epochs=1, iterations_per_epoch=1, pretrained_weights=source))
    log = (fold_dir(root, fold=1) / "training_log.txt").read_text()
    weights = load_checkpoint(source)["network_weights"]
    heads = [k for k in weights if "seg_layers" in k]
    assert heads, "the U-Net has segmentation heads"
    assert f"{len(weights) - len(heads)} tensors loaded, {len(heads)} skipped" in log


def test_pretrained_weights_that_do_not_fit_are_an_error(tmp_path, task_env):
    from segforge.errors import ConfigError

    other = tmp_path / "other.pt"
    torch.save({"encoder.weight": torch.zeros(2, 2)}, other)
    with pytest.raises(ConfigError, match="no tensor matches this network by name and shape"):
        train(make_request(pretrained_weights=other))


def test_training_without_deep_supervision_uses_the_plain_loss(task_env):
    from segforge.losses.compound import DiceCELoss
    from segforge.training.api import build_trainer

    trainer, _ = build_trainer(make_request("deep_supervision=false"))
    try:
        assert isinstance(trainer.loss, DiceCELoss) and trainer.deep_supervision_scales is None
        batch = trainer.train_loader.batch(0, 0)
        assert isinstance(batch["target"], torch.Tensor)  # one target, no per-scale list
        assert trainer.train_step(batch) > 0 and set(trainer.validation_step(batch)) == {"loss", "tp", "fp", "fn"}
    finally:
        trainer.log.close()
