"""Finishing a training now: ``segforge stop`` / SIGUSR1 -> an annealing tail to LR 0 and a final checkpoint."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
from segforge_tiny_task import TASK, fold_dir, make_request

from segforge.training import stop_request
from segforge.training.api import train
from segforge.training.checkpoint import load_checkpoint
from segforge.training.run_controls import RunControls
from segforge.training.schedule import PolySchedule
from segforge.training.stop_request import RUNNING_FILE, STOP_FILE, StopTail, write_stop_request
from segforge.training.trainer import DefaultTrainer


class FakeTrainer(RunControls):
    """What the tail touches: schedule, total, counters, rank, fold folder, log, manifest (and the trainer's
    run controls, resize/load_schedule, through which the tail changes the schedule)."""

    def __init__(self, folder, schedule: PolySchedule) -> None:
        self.schedule = schedule
        self.total_iterations = schedule.total
        self.state = SimpleNamespace(iteration=0)
        self.dist = SimpleNamespace(is_main=True, rank=0, world_size=1)
        self.context = SimpleNamespace(fold_folder=folder)
        self.lines: list[str] = []
        self.log = SimpleNamespace(line=self.lines.append, warning=self.lines.append)
        self.manifests: list[str] = []

    def write_manifest(self, status: str) -> None:
        self.manifests.append(status)

    def run(self, tail: StopTail, until: int) -> list[float]:
        """The loop's shape: LR set from the schedule, a step, then the poll; returns the LRs used."""
        used = []
        while self.state.iteration < min(until, self.total_iterations):
            used.append(self.schedule.lr_at(self.state.iteration))
            self.state.iteration += 1
            tail.poll(self)
        return used


def test_the_tail_decays_an_epoch_stepped_lr_to_zero_and_survives_a_budget_resize(tmp_path):
    trainer = FakeTrainer(tmp_path, PolySchedule(0.01, total=1000, step_every=250))
    tail = StopTail()
    trainer.run(tail, until=37)
    before = trainer.schedule.lr_at(37)
    write_stop_request(tmp_path, tail=6)
    trainer.state.iteration = 36
    trainer.run(tail, until=37)  # the poll after iteration 37 reads the request
    assert not (tmp_path / STOP_FILE).exists(), "a request is consumed"
    assert trainer.total_iterations == 43 and tail.record["final_iteration"] == 43
    assert tail.record["tail_iterations"] == 6 and tail.record["planned_total_iterations"] == 1000
    assert trainer.schedule.lr_at(37) == pytest.approx(before)  # continuous where the stop came
    used = trainer.run(tail, until=40)
    tail_lrs = [trainer.schedule.lr_at(i) for i in range(37, 44)]
    trainer.schedule.retarget(40, 400)  # the budget's per-epoch re-plan would lengthen the run again...
    trainer.total_iterations = 400
    used += trainer.run(tail, until=41)
    assert trainer.total_iterations == 43  # ...the tail wins
    used += trainer.run(tail, until=42)
    trainer.schedule.retarget(42, 400)  # even just before the tail's last iteration
    trainer.total_iterations = 400
    used += trainer.run(tail, until=50)
    assert trainer.state.iteration == 43 and used == pytest.approx(tail_lrs[:6])  # the LRs the tail planned
    assert all(a > b for a, b in zip(used, used[1:], strict=False)), used  # per iteration, not per epoch
    assert used[0] == pytest.approx(before) and trainer.schedule.lr_at(43) == 0.0
    trainer.state.iteration = 41
    trainer.total_iterations = 42  # the budget ran out of time: the sooner end is kept
    tail.poll(trainer)
    assert trainer.total_iterations == 42 and tail.record["final_iteration"] == 42
    assert trainer.manifests == ["running"] and "decays to 0 over 6 more iteration(s)" in trainer.lines[0]


def test_a_request_near_the_end_keeps_the_schedule_and_a_signal_uses_the_default_tail(tmp_path):
    trainer = FakeTrainer(tmp_path, PolySchedule(0.01, total=20))
    tail = StopTail()
    trainer.run(tail, until=15)
    tail.signal.received = True  # what the SIGUSR1 handler sets
    trainer.state.iteration = 14
    trainer.run(tail, until=15)
    assert tail.record["by"] == "SIGUSR1" and tail.record["tail_iterations"] == 5  # 5 left < the default 10
    assert trainer.schedule.total == 20 and trainer.schedule.lr_at(20) == 0.0


def test_a_secondary_rank_hands_a_signal_to_rank_0_through_the_folder(tmp_path):
    trainer = FakeTrainer(tmp_path, PolySchedule(0.01, total=50))
    trainer.dist = SimpleNamespace(is_main=False, rank=1, world_size=2)
    tail = StopTail()
    tail.signal.received = True
    tail.poll(trainer)
    assert tail.record is None and trainer.total_iterations == 50  # rank 0's schedule arrives by the sync
    assert json.loads((tmp_path / STOP_FILE).read_text())["by"] == "SIGUSR1 to rank 1"


def test_sigusr1_finishes_a_real_training_with_a_final_checkpoint(task_env, monkeypatch):
    calls = {"n": 0}
    original = DefaultTrainer.train_step

    def step_then_signal(self, batch):
        loss = original(self, batch)
        calls["n"] += 1
        if calls["n"] == 3:
            assert (fold_dir(task_env) / RUNNING_FILE).is_file()
            os.kill(os.getpid(), signal.SIGUSR1)
        return loss

    monkeypatch.setattr(DefaultTrainer, "train_step", step_then_signal)
    result = train(make_request(epochs=10, iterations_per_epoch=4))
    assert result.status == "finished" and result.iterations == 3 + stop_request.DEFAULT_TAIL_ITERATIONS
    folder = fold_dir(task_env)
    final = load_checkpoint(folder / "checkpoint_final.pt")
    assert PolySchedule.from_state(final["schedule"]).lr_at(13) == 0.0
    assert final["stop"]["by"] == "SIGUSR1" and final["stop"]["at_iteration"] == 3
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["stop"]["final_iteration"] == 13
    assert (folder / "validation" / "summary.json").is_file()  # the usual end, validation included
    assert manifest["time_spent"]["seconds"]["end_predictions"] > 0
    assert not (folder / RUNNING_FILE).exists() and not (folder / STOP_FILE).exists()
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL  # the handler is gone with the training


def test_a_stop_in_a_budgeted_run_keeps_its_tail_when_the_budget_sizes_the_schedule(task_env, monkeypatch):
    """The stop may come while the budget still measures the speed: its sizing must not undo the tail."""
    calls = {"n": 0}
    original = DefaultTrainer.train_step

    def step_then_stop(self, batch):
        loss = original(self, batch)
        calls["n"] += 1
        if calls["n"] == 2:
            write_stop_request(fold_dir(task_env), tail=3)
        return loss

    monkeypatch.setattr(DefaultTrainer, "train_step", step_then_stop)
    request = make_request("budget.iterations_per_epoch=4", "budget.final_val_iterations=0", time_budget_min=0.5)
    request.epochs = request.iterations_per_epoch = None
    result = train(request)
    assert result.status == "finished" and result.iterations == 5
    final = load_checkpoint(fold_dir(task_env) / "checkpoint_final.pt")
    assert final["stop"]["final_iteration"] == 5 and final["progress"]["total"] == 5
    assert PolySchedule.from_state(final["schedule"]).lr_at(5) == 0.0


def _cli(*args: str) -> tuple[int, str]:
    from segforge import plugins
    from segforge.cli.app import main

    plugins.reset_manager()
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0), ""
    finally:
        plugins.reset_manager()
    return 0, ""


def test_segforge_stop_refuses_a_fold_where_nothing_runs(task_env, capsys):
    folder = fold_dir(task_env)
    folder.mkdir(parents=True)
    code, _ = _cli("stop", str(folder))
    err = capsys.readouterr().err
    assert code != 0 and "no training is running" in err and "Traceback" not in err
    code, _ = _cli("stop", "--task", TASK, "--fold", "0")  # the run found as predict finds it
    err = capsys.readouterr().err
    assert code != 0 and f"no training is running in {folder}" in err
    (folder / RUNNING_FILE).write_text(json.dumps({"pid": 2**22 + 12345, "host": socket.gethostname()}))
    code, _ = _cli("stop", str(folder))
    err = capsys.readouterr().err
    assert code != 0 and "has ended" in err and "--continue" in err
    assert not (folder / STOP_FILE).exists(), "nothing half-done: no request for a process that is gone"


def test_segforge_stop_mid_run_gives_an_annealed_final_checkpoint(task_env, monkeypatch, capsys):
    """The command, the request file and the loop's poll, in one process (the subprocess test below is slow)."""
    folder = fold_dir(task_env)
    calls = {"n": 0}
    original = DefaultTrainer.train_step

    def step_then_stop(self, batch):
        loss = original(self, batch)
        calls["n"] += 1
        if calls["n"] == 5:
            assert _cli("stop", str(folder.parent), "--tail", "3", "--skip-validation")[0] == 0
        return loss

    monkeypatch.setattr(DefaultTrainer, "train_step", step_then_stop)
    result = train(make_request(epochs=10, iterations_per_epoch=4))
    assert "stop requested for" in capsys.readouterr().err
    assert result.status == "finished" and result.iterations == 8
    final = load_checkpoint(folder / "checkpoint_final.pt")
    assert final["stop"]["by"] == "segforge stop" and final["stop"]["skip_validation"] is True
    assert PolySchedule.from_state(final["schedule"]).lr_at(8) == 0.0
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["stop"]["at_iteration"] == 5 and manifest["time_spent"]["seconds"]["end_predictions"] < 1
    assert not (folder / "validation").exists()
    assert "validation: skipped by the stop request" in (folder / "training_log.txt").read_text()


@pytest.mark.slow
def test_segforge_stop_ends_a_running_training_with_an_annealed_final_checkpoint(task_env, capsys):
    folder = fold_dir(task_env)
    log = folder / "training_log.txt"
    args = ["--epochs", "60", "--iterations-per-epoch", "10", "--set", "threads=1", "--set", "val_iterations=1"]
    command = [sys.executable, "-m", "segforge", "train", "--task", TASK, "--fold", "0", *args]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (log.exists() and "epoch 1: lr" in log.read_text()):
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "training did not reach epoch 1"
        time.sleep(0.05)
    code, _ = _cli("stop", "--task", TASK, "--fold", "0", "--tail", "4", "--skip-validation", "--wait")
    out = capsys.readouterr().err
    assert code == 0 and "stop requested for" in out and ": finished" in out, out
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    final = load_checkpoint(folder / "checkpoint_final.pt")
    stop = final["stop"]
    assert stop["by"] == "segforge stop" and stop["tail_iterations"] == 4
    done = final["progress"]["iteration"]
    assert done == stop["final_iteration"] == stop["at_iteration"] + 4 < 600
    schedule = PolySchedule.from_state(final["schedule"])
    assert schedule.lr_at(done) == 0.0 and 0 < schedule.lr_at(done - 1) < schedule.lr_at(done - 4)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["stop"] == stop
    assert not (folder / "validation").exists()  # --skip-validation
    text = log.read_text()
    assert "stop requested (segforge stop)" in text and "validation: skipped by the stop request" in text
    assert not (folder / RUNNING_FILE).exists()


@pytest.mark.slow  # a torchrun job of its own
def test_segforge_stop_under_torchrun_ends_every_rank_at_the_same_iteration(task_env, capsys):
    folder = fold_dir(task_env)
    log = folder / "training_log.txt"
    command = [sys.executable, "-m", "segforge", "train", "--task", TASK, "--fold", "0", "--num-gpus", "2"]
    command += ["--device", "cpu", "--epochs", "60", "--iterations-per-epoch", "10", "--set", "val_iterations=1"]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while not (log.exists() and "epoch 1: lr" in log.read_text()):
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "training did not reach epoch 1"
        time.sleep(0.05)
    assert _cli("stop", str(folder), "--tail", "4", "--skip-validation")[0] == 0
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err[-3000:]
    stop = json.loads((folder / "manifest.json").read_text())["stop"]
    final = stop["final_iteration"]
    assert final == stop["at_iteration"] + 4
    assert "[rank 1] training finished: " in err
    rank1 = next(line for line in err.splitlines() if "[rank 1] training finished" in line)
    assert f", {final} iterations" in rank1, rank1
    assert f", {final} iterations" in log.read_text().split("training finished:")[-1].splitlines()[0]
    assert PolySchedule.from_state(load_checkpoint(folder / "checkpoint_final.pt")["schedule"]).lr_at(final) == 0.0
