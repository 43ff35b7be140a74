"""``segforge train`` through the real entry point: outputs, --set errors, plugin trainers and losses."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from segforge_tiny_task import DATASET, TASK, fold_dir, prepare_task, use_task_copy  # noqa: E402

FAST = ("--epochs", "2", "--iterations-per-epoch", "2", "--set", "val_iterations=2", "--set", "threads=1")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_task(tmp_path_factory.mktemp("tiny_task_cli"))


@pytest.fixture
def task(prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    threads = torch.get_num_threads()
    yield use_task_copy(prepared, tmp_path, monkeypatch)
    torch.set_num_threads(threads)


def test_train_writes_checkpoints_log_plot_and_manifest(cli, task):
    run = cli("train", "--task", TASK, "--fold", "0", *FAST)
    assert run.exit_code == 0, run.stderr
    assert "finished" in run.stdout and "checkpoint_best.pt, checkpoint_final.pt" in run.stdout
    folder = fold_dir(task)
    assert (folder / "progress.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    log = (folder / "training_log.txt").read_text()
    assert "epoch 0: train loss" in log and "epoch 1: train loss" in log and "training finished: 2 epochs" in log
    assert "epoch 1: train loss" in run.stderr  # log lines also go to stderr
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["dataset"] == DATASET and manifest["fold"] == 0
    assert manifest["command"][:8] == ["segforge", "train", "--task", TASK, "--fold", "0", "--config", "3d_fullres"]
    assert manifest["command"][-2:] == ["--set", "threads=1"]
    assert manifest["trainer"]["name"] == "default" and manifest["trainer"]["origin"]["plugin"] == "builtin.trainers"
    assert manifest["network"]["name"] == "generic_unet" and manifest["loss"]["name"] == "dc_ce"
    assert len(manifest["plans_digest"]) == 64 and manifest["seed"] == 12345
    assert manifest["progress"] == {**manifest["progress"], "epochs": 2, "iterations": 4, "total_iterations": 4}
    assert {p["name"] for p in manifest["plugins"]} >= {"builtin.networks", "builtin.trainers", "builtin.losses"}
    assert set(manifest["results"]["last_pseudo_dice"]) == {"inner", "core"}
    assert manifest["budget"] is None and manifest["precision"] == "fp32"


@pytest.mark.parametrize(
    ("args", "message", "hint"),
    [
        (
            ("--set", "epoch=3"),
            "error: --set epoch: unknown trainer param 'epoch' (valid: epochs,",
            "did you mean 'epochs'",
        ),
        (("--set", "epochs=lots"), "error: --set epochs: Input should be a valid integer", ""),
        (("--set", "loss.weight_cee=1"), "error: loss 'dc_ce' param loss.weight_cee: Extra inputs", "components show"),
        (("--fold", "7"), "error: fold 7 does not exist", "--fold 0..4"),
        (("--trainer", "defualt"), "error: unknown trainer 'defualt'", "did you mean 'default'"),
        (("--time-budget", "-1"), "error: --time-budget -1.0: must be a positive number", ""),
    ],
)
def test_bad_arguments_are_one_line_errors(cli, task, args, message, hint):
    base = ["train", "--task", TASK]
    if "--fold" not in args:
        base += ["--fold", "0"]
    run = cli(*base, *args)
    assert run.exit_code == 2, run.stderr
    assert message in run.stderr and hint in run.stderr
    assert "Traceback" not in run.stderr
    assert not (task / "results").exists() or "--time-budget" in args


PLUGIN = """
from pydantic import Field

from segforge import hookimpl
from segforge.losses.components import LossComponent, LossParams
from segforge.training.params import TrainerParams
from segforge.training.trainer import DefaultTrainer


class ScaledCEParams(LossParams):
    scale: float = 1.0


class ScaledCE(LossComponent):
    '''Cross-entropy times a constant.'''

    name = "scaled_ce"
    version = "0.3"
    Params = ScaledCEParams

    def build(self, params, context):
        import torch

        class Loss(torch.nn.Module):
            def forward(self, logits, target):
                return params.scale * torch.nn.functional.cross_entropy(logits.float(), target[:, 0].long())

        return Loss()


class QuickParams(TrainerParams):
    note: str = Field("hello")


class QuickTrainer(DefaultTrainer):
    '''Adam instead of SGD.'''

    name = "quick"
    version = "2.0"
    Params = QuickParams

    def configure_optimizer(self):
        import torch

        return torch.optim.Adam(self.network.parameters(), lr=1e-3)


@hookimpl
def segforge_register_losses(registry):
    registry.add(ScaledCE())


@hookimpl
def segforge_register_trainers(registry):
    registry.add(QuickTrainer)
"""


@pytest.fixture
def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = "segforge_test_training_plugin"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_plugin_trainer_and_loss_are_selected_by_name(cli, task, plugin_module):
    run = cli(
        "-p", plugin_module, "train", "--task", TASK, "--fold", "0", "--trainer", "quick", "--loss", "scaled_ce",
        "--set", "loss.scale=2", "--set", "note=hi", *FAST,
    )  # fmt: skip
    assert run.exit_code == 0, run.stderr
    folder = fold_dir(task, trainer="quick")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["trainer"]["name"] == "quick" and manifest["trainer"]["version"] == "2.0"
    assert manifest["trainer"]["origin"]["plugin"] == plugin_module and manifest["trainer"]["params"]["note"] == "hi"
    assert manifest["loss"] == {**manifest["loss"], "name": "scaled_ce", "version": "0.3", "params": {"scale": 2}}
    payload = torch.load(folder / "checkpoint_final.pt", weights_only=True)
    assert "betas" in payload["optimizer_state"]["param_groups"][0]  # Adam, from the plugin's step
    # 2 x cross-entropy of 3 classes starts near 2 ln 3 = 2.2; Dice+CE would start near 1.1 - 0.3
    assert payload["logs"]["train_loss"][0] > 1.5


def test_plugin_from_segforge_plugins_env(cli, task, plugin_module, monkeypatch):
    monkeypatch.setenv("SEGFORGE_PLUGINS", plugin_module)
    run = cli("train", "--task", TASK, "--fold", "0", "--trainer", "quick", "--set", "nota=1")
    assert run.exit_code == 2 and "unknown trainer param 'nota'" in run.stderr and "did you mean 'note'" in run.stderr
