"""A plugin trainer that overrides ``train_step`` and ``make_schedule`` keeps its overrides everywhere.

The plugin (written to a module and loaded like ``-p`` / ``SEGFORGE_PLUGINS``) trains with its
own step (half the loss, no clipping; it logs ``iteration lr`` per call, per rank) and its own
linear schedule. The tests check that its steps and its LR curve are what ran: in a plain run,
after a SIGKILL and ``--continue`` (weights equal to an uninterrupted ``--deterministic`` run),
under ``--time-budget`` (the probe's steps are the plugin's, counted as training, and the budget
re-sizes the linear schedule through ``trainer.resize`` so it still reaches 0) and under a
2-rank torchrun job.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from segforge_tiny_task import TASK, fold_dir, make_request

from segforge import plugins
from segforge.training.checkpoint import load_checkpoint
from segforge.training.protocols import Schedule, Trainer
from segforge.training.trainer import DefaultTrainer

MODULE = "segforge_counting_trainer"
PLUGIN = '''
import dataclasses

from segforge import hookimpl
from segforge.training.trainer import DefaultTrainer


@dataclasses.dataclass
class LinearSchedule:
    """Linear decay to 0 at ``total``; retarget keeps the LR continuous and still ends at 0."""

    initial_lr: float
    total: int
    anchor_iteration: int = 0
    anchor_lr: float | None = None

    def lr_at(self, iteration):
        start = self.initial_lr if self.anchor_lr is None else self.anchor_lr
        span = max(self.total - self.anchor_iteration, 1)
        return start * min(1.0, max(0.0, 1 - (iteration - self.anchor_iteration) / span))

    def retarget(self, iteration, new_total):
        self.anchor_lr = self.lr_at(iteration)
        self.anchor_iteration, self.total = iteration, max(int(new_total), iteration)

    def state_dict(self):
        return {"kind": "linear", **dataclasses.asdict(self)}

    @classmethod
    def from_state(cls, state):
        return cls(**{k: v for k, v in state.items() if k != "kind"})


class CountingTrainer(DefaultTrainer):
    name = "counting"
    version = "1.0"

    def make_schedule(self):
        return LinearSchedule(self.params.initial_lr, self.total_iterations)

    def train_step(self, batch):
        data, target = self.to_device(batch)
        self.optimizer.zero_grad(set_to_none=True)
        with self.precision.autocast():
            loss = 0.5 * self.loss(self.forward(data, target), target)
        loss.backward()
        self.optimizer.step()
        lr = self.optimizer.param_groups[0]["lr"]
        with (self.context.fold_folder / f"steps_rank{self.dist.rank}.txt").open("a") as f:
            f.write(f"{self.state.iteration} {lr!r}\\n")
        return float(loss.detach())


@hookimpl
def segforge_register_trainers(registry):
    registry.add(CountingTrainer)
'''


@pytest.fixture
def plugin_env(task_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The plugin module on the path, selected by SEGFORGE_PLUGINS here and in subprocesses."""
    (tmp_path / f"{MODULE}.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("SEGFORGE_PLUGINS", MODULE)
    plugins.reset_manager()
    yield dict(os.environ)
    plugins.reset_manager()
    sys.modules.pop(MODULE, None)


def _folder(root: Path) -> Path:
    return fold_dir(root, trainer="counting")


def _steps(root: Path, rank: int = 0) -> list[tuple[int, float]]:
    lines = (_folder(root) / f"steps_rank{rank}.txt").read_text().split("\n")
    return [(int(i), float(lr)) for i, lr in (line.split() for line in lines if line)]


def _assert_linear(steps: list[tuple[int, float]], initial: float, total: int) -> None:
    for iteration, lr in steps:
        assert lr == pytest.approx(initial * (1 - iteration / total), rel=1e-6, abs=1e-12), iteration


def test_the_default_trainer_and_its_schedule_satisfy_the_protocols(task_env: Path) -> None:
    from segforge.training.schedule import PolySchedule

    methods = [name for name, value in vars(Trainer).items() if callable(value) and not name.startswith("_")]
    assert {"train_step", "resize", "after_training", "load_schedule"} <= set(methods)
    missing = [name for name in methods if not callable(getattr(DefaultTrainer, name, None))]
    assert missing == []
    assert isinstance(PolySchedule(0.01, 10), Schedule)
    assert not isinstance(object(), Schedule)


# -- a plain run, then SIGKILL + --continue equal to uninterrupted ----------------------------------
ARGS = ("--trainer", "counting", "--deterministic", "--epochs", "2", "--iterations-per-epoch", "8",
        "--set", "checkpoint_every=1", "--set", "threads=1", "--set", "val_iterations=1",
        "--set", "final_val_iterations=0", "--set", "initial_lr=0.01")  # fmt: skip


def _train_command(*extra: str) -> list[str]:
    return [sys.executable, "-m", "segforge", "train", "--task", TASK, "--fold", "0", *ARGS, *extra]


def test_plugin_step_and_schedule_train_and_resume_after_sigkill_as_uninterrupted(plugin_env, task_env: Path) -> None:
    done = subprocess.run(_train_command(), capture_output=True, text=True, env=plugin_env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    folder = _folder(task_env)
    reference = load_checkpoint(folder / "checkpoint_final.pt")
    assert reference["schedule"]["kind"] == "linear" and reference["trainer"]["name"] == "counting"
    steps = _steps(task_env)
    assert [i for i, _ in steps] == list(range(16))  # every step was the plugin's
    _assert_linear(steps, 0.01, 16)  # ... at the plugin's LR curve
    shutil.rmtree(task_env / "results")

    log = folder / "training_log.txt"
    proc = subprocess.Popen(_train_command(), stderr=subprocess.PIPE, text=True, env=plugin_env)
    deadline = time.monotonic() + 120
    while not (log.exists() and "epoch 1: lr" in log.read_text()):
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "timed out waiting for epoch 1"
        time.sleep(0.05)
    proc.kill()  # SIGKILL: only checkpoint_latest.pt of epoch 0 is left
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (folder / "checkpoint_final.pt").exists()
    done = subprocess.run(_train_command("--continue"), capture_output=True, text=True, env=plugin_env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "continuing from checkpoint_latest.pt" in log.read_text()
    resumed = load_checkpoint(folder / "checkpoint_final.pt")
    assert resumed["schedule"] == reference["schedule"]  # restored as the plugin's LinearSchedule
    for key, value in reference["network_weights"].items():
        assert torch.equal(resumed["network_weights"][key], value), f"{key} differs from the uninterrupted run"
    assert resumed["logs"]["train_loss"] == pytest.approx(reference["logs"]["train_loss"], abs=1e-7)
    after = _steps(task_env)
    assert [i for i, _ in after][-8:] == list(range(8, 16))  # the continued session ran the plugin's step
    _assert_linear(after, 0.01, 16)


# -- under a time budget ----------------------------------------------------------------------------
def test_budget_times_and_counts_the_plugin_step_and_resizes_its_schedule(plugin_env, task_env: Path) -> None:
    from segforge.training.api import train

    request = make_request(
        "budget.iterations_per_epoch=10", "budget.final_val_iterations=0", trainer="counting", time_budget_min=0.2
    )
    request.epochs = request.iterations_per_epoch = None
    assert train(request).status == "finished"
    folder = _folder(task_env)
    payload = load_checkpoint(folder / "checkpoint_final.pt")
    manifest = json.loads((folder / "manifest.json").read_text())
    done = payload["progress"]["iteration"]
    steps = _steps(task_env)
    assert [i for i, _ in steps] == list(range(done))  # the probe's steps were the plugin's and counted
    probe = manifest["budget"]["measurements"]["probe"]
    assert 1 <= probe["steps"] <= done and probe["steps_count_as_training"] is True
    schedule = payload["schedule"]
    assert schedule["kind"] == "linear"  # re-sized through trainer.resize, not replaced by poly
    hard_stop = any(r.get("hard_stop") for r in manifest["budget"]["replans"])
    assert schedule["total"] == done or hard_stop
    assert schedule["total"] < 10**9 and schedule["anchor_iteration"] > 0  # sized from the measured speed
    if not hard_stop:  # the last step ran at the last LR before 0
        initial = payload["trainer"]["params"]["initial_lr"]
        assert steps[-1][1] < initial / max(done - schedule["anchor_iteration"], 1) * 1.01


# -- under torchrun ---------------------------------------------------------------------------------
@pytest.mark.slow  # a torchrun job of its own (~30-60 s on two busy cores)
def test_two_rank_ddp_runs_the_plugin_step_on_every_rank_with_its_schedule(plugin_env, task_env: Path) -> None:
    command = _train_command("--num-gpus", "2", "--device", "cpu")
    done = subprocess.run(command, capture_output=True, text=True, env=plugin_env, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    folder = _folder(task_env)
    payload = load_checkpoint(folder / "checkpoint_final.pt")
    assert payload["schedule"]["kind"] == "linear" and payload["progress"]["iteration"] == 16
    for rank in (0, 1):
        steps = _steps(task_env, rank)
        assert [i for i, _ in steps] == list(range(16)), rank
        _assert_linear(steps, 0.01, 16)


@pytest.mark.slow  # a budgeted torchrun job (~20-60 s on two busy cores)
def test_two_rank_ddp_under_a_budget_resizes_the_plugin_schedule_alike_on_both_ranks(plugin_env, task_env) -> None:
    command = [sys.executable, "-m", "segforge", "train", "--task", TASK, "--fold", "0", "--trainer", "counting",
               "--num-gpus", "2", "--device", "cpu", "--time-budget", "0.3", "--set", "threads=1",
               "--set", "budget.iterations_per_epoch=10", "--set", "budget.final_val_iterations=0"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=plugin_env, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    payload = load_checkpoint(_folder(task_env) / "checkpoint_final.pt")
    iterations = payload["progress"]["iteration"]
    assert payload["schedule"]["kind"] == "linear" and payload["schedule"]["anchor_iteration"] > 0
    rank0, rank1 = _steps(task_env, 0), _steps(task_env, 1)
    assert [i for i, _ in rank0] == list(range(iterations))
    assert rank1 == rank0  # same steps at the same LRs: rank 0's resized schedule reached rank 1
