"""Data-parallel training under torchrun (gloo, CPU): batch split, agreement, failure, resume.

The torchrun tests start real worker processes (``python -m torch.distributed.run --standalone
--nproc_per_node 2 -m segforge train ...``) on the tiny synthetic task and on 10 real hippocampus
cases (skipped without the data); the resumed-equals-uninterrupted comparison and the gradient
equality check are marked slow.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from segforge_tiny_task import TASK, fold_dir, shrink_network

from segforge.cli.app import main
from segforge.data.sampling import forced_foreground_items
from segforge.errors import UsageError
from segforge.training import distributed
from segforge.training.checkpoint import load_checkpoint
from segforge.training.launch import check_launch, strip_option, torchrun_command

HERE = Path(__file__).resolve().parent
TINY = ["--epochs", "3", "--iterations-per-epoch", "3", "--set", "val_iterations=2", "--set", "checkpoint_every=1"]


# -- the per-rank recipe ---------------------------------------------------------------------------
@pytest.mark.parametrize("oversample", [0.0, 0.33, 0.5, 1.0])
@pytest.mark.parametrize(("batch", "world"), [(2, 2), (9, 2), (7, 3), (12, 4), (5, 5), (4, 1)])
def test_split_batch_keeps_the_global_recipe(batch: int, world: int, oversample: float) -> None:
    parts = [distributed.split_batch(batch, oversample, world, r) for r in range(world)]
    assert sum(b for b, _ in parts) == batch and max(b for b, _ in parts) - min(b for b, _ in parts) <= 1
    per_rank = [item for b, f in parts for item in forced_foreground_items(b, f)]
    assert per_rank == forced_foreground_items(batch, oversample)  # same forced items, same positions


def test_split_batch_matches_nnunet_for_hippocampus() -> None:
    # nnU-Net: batch 9 on 2 GPUs -> 5 + 4; 0.33 of 9 -> the last 3 items forced, all on rank 1
    assert distributed.split_batch(9, 0.33, 2, 0) == (5, 0.0)
    assert distributed.split_batch(9, 0.33, 2, 1) == (4, 0.75)


def test_batch_smaller_than_world_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="batch size 2 cannot be split over 3 processes") as info:
        distributed.split_batch(2, 0.33, 3, 0)
    assert "--set batch_size=3" in info.value.hint


def test_ranks_draw_from_distinct_seeds_and_one_process_keeps_its_seed() -> None:
    assert distributed.DistributedRun().rank_seed(12345) == 12345
    seeds = {distributed.DistributedRun(r, 4, r, "gloo").rank_seed(12345) for r in range(4)}
    assert len(seeds) == 4


def test_environment_detection() -> None:
    assert distributed.detect_environment({}) is None
    assert distributed.detect_environment({"WORLD_SIZE": "1", "RANK": "0"}) is None
    env = {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1", "MASTER_ADDR": "x", "MASTER_PORT": "1"}
    assert distributed.detect_environment(env) == (1, 2, 1)
    with pytest.raises(UsageError, match="WORLD_SIZE=2 is set but MASTER_PORT is not"):
        distributed.detect_environment({k: v for k, v in env.items() if k != "MASTER_PORT"})


def test_timeout_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert distributed.timeout_s("cuda") == 300 and distributed.timeout_s("cpu") == 120
    monkeypatch.setenv(distributed.TIMEOUT_ENV, "30")
    assert distributed.timeout_s("cpu") == 30
    monkeypatch.setenv(distributed.TIMEOUT_ENV, "soon")
    with pytest.raises(UsageError, match="SEGFORGE_DIST_TIMEOUT_S=soon: not a positive number of seconds"):
        distributed.timeout_s("cpu")


# -- the --num-gpus launcher -------------------------------------------------------------------------
def test_num_gpus_relaunches_the_same_command_under_torchrun() -> None:
    argv = ["train", "--task", "4", "--num-gpus", "2", "--fold", "0", "--num-gpus=3", "--device", "cpu"]
    assert strip_option(argv) == ["train", "--task", "4", "--fold", "0", "--device", "cpu"]
    command = torchrun_command(2, ["train", "--task", "4"])
    assert command[1:] == [
        "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "segforge", "train", "--task", "4",
    ]  # fmt: skip


def test_num_gpus_without_gpus_says_to_use_the_cpu(monkeypatch, capsys) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as info:
        main(["train", "--task", "4", "--fold", "0", "--num-gpus", "2"])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert "error: --num-gpus 2: torch sees 0 GPU(s) on this node" in err
    assert "hint: for 2 CPU processes (gloo) add --device cpu" in err


def test_num_gpus_inside_torchrun_is_refused(monkeypatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(UsageError, match="--num-gpus inside a torchrun job"):
        check_launch(2, "cpu")


# -- real process groups --------------------------------------------------------------------------
def _torchrun(*args: str, nproc: int = 2) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc), *args]


@pytest.mark.slow  # ~15-30 s: a torchrun job of its own
def test_ddp_step_on_rank_slices_equals_one_process_on_the_whole_batch(tmp_path: Path) -> None:
    """What --deterministic can promise across world sizes: the same data give the same step.

    Both with per-sample Dice and with batch Dice (sums pooled over all ranks' slices)."""
    out = tmp_path / "grads.json"
    done = subprocess.run(_torchrun(str(HERE / "ddp_gradient_check.py"), str(out)), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["world_size"] == 2
    for key in ("batch_dice=False", "batch_dice=True"):
        r = result[key]
        assert r["loss"] == pytest.approx(r["reference_loss"], rel=1e-5)
        assert r["max_grad_diff"] <= 1e-5 * r["max_grad"]


def _train(*extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "segforge", "train", "--task", TASK, "--fold", "0", "--num-gpus", "2"]
    command += ["--device", "cpu", *TINY, *extra]
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300)


def test_killed_rank_stops_the_job_and_continue_resumes_it(task_env: Path) -> None:
    started = time.monotonic()
    killed = _train(env={distributed.FAULT_ENV: "1:4"})  # rank 1 SIGKILLs itself after iteration 4
    elapsed = time.monotonic() - started
    assert killed.returncode != 0 and elapsed < 120, killed.stderr[-3000:]
    assert "error: rank 0 of 2: lost its peers at epoch 1, iteration 4" in killed.stderr
    assert "exitcode  : -9" in killed.stderr  # torchrun's summary names the killed rank
    folder = fold_dir(task_env)
    assert sorted(p.name for p in folder.glob("checkpoint_*.pt")) == ["checkpoint_best.pt", "checkpoint_latest.pt"]

    done = _train("--continue")
    assert done.returncode == 0, done.stderr[-3000:]
    log = (folder / "training_log.txt").read_text()
    assert "continuing from checkpoint_latest.pt" in log and "training finished: 3 epochs, 9 iterations" in log
    assert "distributed: 2 processes (gloo), global batch 2 split [1, 1]" in log
    assert "[rank 1]" not in log  # rank 0 owns the log file; rank 1 logs to stderr only
    assert "[rank 1] epoch 2: train loss" in done.stderr
    assert "[rank 1] continuing from checkpoint_latest.pt" in done.stderr
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == [
        "checkpoint_best.pt", "checkpoint_final.pt", "manifest.json", "progress.png", "training_log.txt",
    ]  # fmt: skip
    final = load_checkpoint(folder / "checkpoint_final.pt")
    assert final["progress"]["iteration"] == 9 and len(final["logs"]["train_loss"]) == 3
    manifest = json.loads((folder / "manifest.json").read_text())
    assert (manifest["world_size"], manifest["batch_size"]) == (2, 2)


@pytest.mark.slow
def test_resumed_two_rank_run_equals_an_uninterrupted_one(task_env: Path) -> None:
    assert _train().returncode == 0
    reference = load_checkpoint(fold_dir(task_env) / "checkpoint_final.pt")
    shutil.rmtree(task_env / "results")
    assert _train(env={distributed.FAULT_ENV: "0:5"}).returncode != 0
    assert _train("--continue").returncode == 0
    resumed = load_checkpoint(fold_dir(task_env) / "checkpoint_final.pt")
    assert resumed["logs"]["train_loss"] == pytest.approx(reference["logs"]["train_loss"], abs=1e-6)
    for key, value in reference["network_weights"].items():
        assert torch.allclose(resumed["network_weights"][key], value, atol=1e-6, rtol=0), key


def _link_hippocampus(msd: Path, raw: Path, n_cases: int) -> None:
    info = json.loads((msd / "dataset.json").read_text())
    names = sorted(p.name for p in (msd / "imagesTr").glob("hippocampus_*.nii.gz"))[:n_cases]
    task = raw / "Task004_Hippocampus"
    (task / "imagesTr").mkdir(parents=True)
    (task / "labelsTr").mkdir()
    for name in names:
        (task / "imagesTr" / name.replace(".nii.gz", "_0000.nii.gz")).symlink_to(msd / "imagesTr" / name)
        (task / "labelsTr" / name).symlink_to(msd / "labelsTr" / name)
    training = [{"image": f"./imagesTr/{n}", "label": f"./labelsTr/{n}"} for n in names]
    info.update(numTraining=len(names), training=training, test=[])
    (task / "dataset.json").write_text(json.dumps(info))


def test_torchrun_trains_hippocampus_on_two_ranks_and_continues(hippocampus_msd: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SEGFORGE_RAW": str(tmp_path / "raw"),
        "SEGFORGE_PREPROCESSED": str(tmp_path / "pre"),
        "SEGFORGE_RESULTS": str(tmp_path / "results"),
    }
    _link_hippocampus(hippocampus_msd, tmp_path / "raw", 10)
    plan = [sys.executable, "-m", "segforge", "plan-and-preprocess", "--task", "4", "-np", "2", "-c", "3d_fullres"]
    subprocess.run(plan, env=env, check=True, capture_output=True)
    shrink_network(tmp_path / "pre" / "Task004_Hippocampus" / "segforgePlans.json", [8, 16, 32, 64])
    train = _torchrun("-m", "segforge", "train", "--task", "4", "--fold", "0", "--device", "cpu", "--epochs", "2")
    train += ["--iterations-per-epoch", "2", "--set", "val_iterations=1", "--set", "batch_size=4"]
    train += ["--set", "checkpoint_every=1"]
    # rank 1 dies after iteration 3 (epoch 1), after checkpoint_latest.pt of epoch 0 was written
    first = subprocess.run(train, env={**env, distributed.FAULT_ENV: "1:3"}, capture_output=True, text=True)
    assert first.returncode != 0 and "[rank 1] epoch 0: train loss" in first.stderr, first.stderr[-3000:]
    fold = tmp_path / "results" / "Task004_Hippocampus" / "3d_fullres" / "default__generic_unet__segforgePlans"
    fold = fold / "fold_0"
    assert load_checkpoint(fold / "checkpoint_latest.pt")["progress"]["iteration"] == 2
    more = subprocess.run([*train, "--continue"], env=env, capture_output=True, text=True, timeout=600)
    assert more.returncode == 0, more.stderr[-3000:]
    log = (fold / "training_log.txt").read_text()
    assert "global batch 4 split [2, 2]" in log and "continuing from checkpoint_latest.pt" in log
    assert "training finished: 2 epochs, 4 iterations" in log and "[rank 1] epoch 1: train loss" in more.stderr
    assert more.stdout.count("best EMA pseudo Dice") == 1, more.stdout  # the result table: rank 0 only
    assert sorted(p.name for p in fold.glob("checkpoint_*.pt")) == ["checkpoint_best.pt", "checkpoint_final.pt"]
    assert load_checkpoint(fold / "checkpoint_final.pt")["progress"]["iteration"] == 4
