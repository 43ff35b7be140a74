"""Resuming: paused and interrupted runs end with the weights of an uninterrupted one; SIGKILL/SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from segforge_tiny_task import TASK, fold_dir, make_request

from segforge.training.api import train
from segforge.training.checkpoint import load_checkpoint
from segforge.training.signals import TrainingInterrupted
from segforge.training.trainer import DefaultTrainer


def _final_weights(root):
    return load_checkpoint(fold_dir(root) / "checkpoint_final.pt")["network_weights"]


def _assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6, rtol=0), f"{key} differs"


def test_paused_and_continued_run_equals_an_uninterrupted_one(task_env):
    request = make_request(epochs=3, deterministic=True)
    train(request)
    reference = _final_weights(task_env)
    reference_logs = load_checkpoint(fold_dir(task_env) / "checkpoint_final.pt")["logs"]
    shutil.rmtree(task_env / "results")

    paused = train(request, stop_after_epochs=1)
    assert paused.status == "paused" and paused.epochs == 1
    assert (fold_dir(task_env) / "checkpoint_latest.pt").exists()
    request.resume = True
    resumed = train(request)
    assert resumed.status == "finished" and resumed.iterations == 6
    _assert_same_weights(_final_weights(task_env), reference)
    logs = load_checkpoint(fold_dir(task_env) / "checkpoint_final.pt")["logs"]
    assert logs["train_loss"] == pytest.approx(reference_logs["train_loss"], abs=1e-6)


def test_interrupted_mid_epoch_and_continued_equals_uninterrupted(task_env, monkeypatch):
    request = make_request(epochs=2, iterations_per_epoch=3, deterministic=True)
    train(request)
    reference = _final_weights(task_env)
    shutil.rmtree(task_env / "results")

    calls = {"n": 0}
    original = DefaultTrainer.train_step

    def step_then_signal(self, batch):
        loss = original(self, batch)
        calls["n"] += 1
        if calls["n"] == 4:  # the second iteration of epoch 1
            os.kill(os.getpid(), signal.SIGINT)
        return loss

    monkeypatch.setattr(DefaultTrainer, "train_step", step_then_signal)
    with pytest.raises(TrainingInterrupted, match="interrupted by SIGINT at epoch 1, iteration 4") as info:
        train(request)
    assert info.value.exit_code == 130
    latest = load_checkpoint(fold_dir(task_env) / "checkpoint_latest.pt")
    assert latest["progress"]["iteration_in_epoch"] == 1 and latest["progress"]["epoch"] == 1
    monkeypatch.setattr(DefaultTrainer, "train_step", original)
    request.resume = True
    assert train(request).iterations == 6
    _assert_same_weights(_final_weights(task_env), reference)


def _segforge(*args: str) -> list[str]:
    return [sys.executable, "-m", "segforge", "train", "--task", TASK, "--fold", "0", *args]


def _wait_for(predicate, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"training exited early: {proc.stderr.read() if proc.stderr else ''}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("timed out waiting for training")
        time.sleep(0.05)


SLOW_ARGS = ("--epochs", "2", "--iterations-per-epoch", "10", "--set", "checkpoint_every=1")
SLOW_SETS = ("--set", "threads=1", "--set", "val_iterations=2")


def test_continue_after_sigkill_mid_epoch_completes(task_env):
    log = fold_dir(task_env) / "training_log.txt"
    proc = subprocess.Popen(_segforge(*SLOW_ARGS, *SLOW_SETS), stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: log.exists() and "epoch 1: lr" in log.read_text(), 120, proc)
    time.sleep(0.2)
    proc.kill()  # SIGKILL: no handler runs, only checkpoint_latest.pt of epoch 0 is left
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert (fold_dir(task_env) / "checkpoint_latest.pt").exists()
    assert not (fold_dir(task_env) / "checkpoint_final.pt").exists()

    done = subprocess.run(_segforge(*SLOW_ARGS, *SLOW_SETS, "--continue"), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    text = log.read_text()
    assert "continuing from checkpoint_latest.pt" in text and "training finished: 2 epochs, 20 iterations" in text
    final = load_checkpoint(fold_dir(task_env) / "checkpoint_final.pt")
    assert final["progress"]["iteration"] == 20 and len(final["logs"]["train_loss"]) == 2


def test_sigterm_saves_latest_and_exits_143(task_env):
    log = fold_dir(task_env) / "training_log.txt"
    proc = subprocess.Popen(_segforge(*SLOW_ARGS, *SLOW_SETS), stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: log.exists() and "epoch 0: lr" in log.read_text(), 120, proc)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "error: training interrupted by SIGTERM" in err and "--continue" in err
    latest = load_checkpoint(fold_dir(task_env) / "checkpoint_latest.pt")
    assert latest["progress"]["iteration"] >= 1
