"""Benchmark: training to a wall-clock budget, segforge ``--time-budget`` against stock nnU-Net v2.

Both tools train the same fold of the hippocampus data (same ``splits_final.json``) for the same
wall-clock budget on this machine, then predict the fold's validation cases (sliding window,
mirroring on) and score them with Dice per label. Reported per tool: training iterations,
seconds per iteration, final learning rate, wall time and validation Dice.

* segforge: ``segforge train --task 4 --fold F --time-budget B`` (budget-aware recipe), then
  ``segforge predict`` + ``segforge evaluate`` on the validation cases.
* nnU-Net v2: its stock ``nnUNetTrainer`` (1000 epochs x 250 iterations, poly LR), driven like
  ``nnUNetv2_train`` but stopped when the budget (counted from the start of its process) is
  spent, then ``checkpoint_final.pth`` and its own ``perform_actual_validation`` (summary.json).

Needs the nnU-Net venv (``/work/nnunet-venv``, marker ``.ready``, see benchmarks/README.md) and
nnU-Net's preprocessed hippocampus data (``/work/nnunet_ref``, made by benchmarks/preprocess.py's
recipe). Either side can be skipped. Run with the project's or the nnU-Net venv's python::

    python benchmarks/train_budget.py --budget 10 --fold 0 --work /tmp/train_budget
    python benchmarks/train_budget.py --budget 10 --skip-nnunet     # segforge only

A full comparison takes about 2 x (budget + 5) minutes. Timed assertions do not belong in unit tests;
this script only reports.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_MSD = Path(os.environ.get("SEGFORGE_TEST_DATA", "/work/shared/data")) / "Task04_Hippocampus"
NNUNET_PYTHON = Path("/work/nnunet-venv/bin/python")
NNUNET_REF = Path("/work/nnunet_ref")
SEGFORGE = [sys.executable, "-m", "segforge"]

# Runs inside the nnU-Net venv: the stock trainer, stopped at the budget (seconds since process start).
NNUNET_DRIVER = r"""
import json, os, sys, time
T0 = time.monotonic()
budget, fold, out = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
import torch
torch.set_num_threads(os.cpu_count())
from nnunetv2.run.run_training import get_trainer_from_args
trainer = get_trainer_from_args("4", "3d_fullres", fold, "nnUNetTrainer", "nnUNetPlans", device=torch.device("cpu"))
trainer.on_train_start()
times, iterations, done = [], 0, False
while not done and trainer.current_epoch < trainer.num_epochs:
    trainer.on_epoch_start(); trainer.on_train_epoch_start()
    outputs = []
    for _ in range(trainer.num_iterations_per_epoch):
        t = time.monotonic()
        outputs.append(trainer.train_step(next(trainer.dataloader_train)))
        times.append(time.monotonic() - t); iterations += 1
        if time.monotonic() - T0 >= budget:
            done = True; break
    trainer.on_train_epoch_end(outputs)
    with torch.no_grad():
        trainer.on_validation_epoch_start()
        n_val = 2 if done else trainer.num_val_iterations_per_epoch
        vals = [trainer.validation_step(next(trainer.dataloader_val)) for _ in range(n_val)]
        trainer.on_validation_epoch_end(vals)
    trainer.on_epoch_end()
lr = trainer.optimizer.param_groups[0]["lr"]
train_wall = time.monotonic() - T0
trainer.on_train_end()
trainer.perform_actual_validation(False)
summary = json.load(open(os.path.join(trainer.output_folder, "validation", "summary.json")))
json.dump({"iterations": iterations, "s_per_iteration": sum(times[1:]) / max(len(times) - 1, 1), "final_lr": lr,
           "train_wall_s": train_wall, "dice": {k: v["Dice"] for k, v in summary["mean"].items()}}, open(out, "w"))
"""


def run(cmd: list[str], env: dict[str, str], log: Path) -> float:
    """Run ``cmd`` with its output appended to ``log``; returns the wall time; raises on failure."""
    started = time.monotonic()
    with open(log, "a") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])}... failed (exit {proc.returncode}); see {log}")
    return time.monotonic() - started


def segforge_side(args: argparse.Namespace, work: Path) -> dict:
    root = work / "segforge"
    env = {**os.environ, "SEGFORGE_RAW": str(root / "raw"), "SEGFORGE_PREPROCESSED": str(root / "pre"),
           "SEGFORGE_RESULTS": str(root / "results")}  # fmt: skip
    log = work / "segforge.log"
    if not (root / "pre" / "Task004_Hippocampus" / "segforgePlans.json").exists():
        run([*SEGFORGE, "convert-msd", str(args.msd), "-np", "2"], env, log)
        run([*SEGFORGE, "plan-and-preprocess", "--task", "4", "-np", "2"], env, log)
    shutil.rmtree(root / "results", ignore_errors=True)
    train_wall = run([*SEGFORGE, "train", "--task", "4", "--fold", str(args.fold), "--time-budget", str(args.budget),
                      *sum((["--set", s] for s in args.set), [])], env, log)  # fmt: skip
    fold_dir = next((root / "results" / "Task004_Hippocampus" / "3d_fullres").glob(f"*/fold_{args.fold}"))
    manifest = json.loads((fold_dir / "manifest.json").read_text())
    splits = json.loads((root / "pre" / "Task004_Hippocampus" / "splits_final.json").read_text())
    val_ids = splits[args.fold]["val"]
    inputs, preds = work / "val_images", work / "segforge_pred"
    shutil.rmtree(inputs, ignore_errors=True)
    shutil.rmtree(preds, ignore_errors=True)
    inputs.mkdir()
    raw = root / "raw" / "Task004_Hippocampus"
    for case in val_ids:
        (inputs / f"{case}_0000.nii.gz").symlink_to(raw / "imagesTr" / f"{case}_0000.nii.gz")
    predict_wall = run([*SEGFORGE, "predict", "-i", str(inputs), "-o", str(preds), "--task", "4",
                        "--folds", str(args.fold), "--checkpoint", "final"], env, log)  # fmt: skip
    refs = work / "val_labels"
    shutil.rmtree(refs, ignore_errors=True)
    refs.mkdir()
    for case in val_ids:
        (refs / f"{case}.nii.gz").symlink_to(raw / "labelsTr" / f"{case}.nii.gz")
    run([*SEGFORGE, "evaluate", "--ref", str(refs), "--pred", str(preds), "--labels", "1", "2",
         "-o", str(work / "segforge_summary.json")], env, log)  # fmt: skip
    summary = json.loads((work / "segforge_summary.json").read_text())
    budget = manifest["budget"]
    return {
        "iterations": manifest["progress"]["iterations"],
        "s_per_iteration": budget["measurements"].get("s_per_iteration"),
        "final_lr": None,
        "train_wall_s": train_wall,
        "predict_wall_s": predict_wall,
        "pseudo_dice": manifest["results"]["final_pseudo_dice"],
        "dice": _mean_dice(summary),
        "decisions": budget["decisions"],
    }


def _mean_dice(summary: dict) -> dict:
    """Per-label mean Dice from a segforge evaluate summary (tolerant of its exact layout)."""
    mean = summary.get("mean", summary)
    out = {}
    for label, metrics in mean.items():
        if isinstance(metrics, dict) and "Dice" in metrics:
            out[str(label)] = metrics["Dice"]
        elif isinstance(metrics, dict) and "dice" in metrics:
            out[str(label)] = metrics["dice"]
    return out


def nnunet_side(args: argparse.Namespace, work: Path, splits_from: Path | None) -> dict:
    if not (NNUNET_PYTHON.parent.parent / ".ready").exists():
        raise SystemExit(f"{NNUNET_PYTHON.parent.parent}/.ready missing: set up the nnU-Net venv first")
    pre = work / "nnunet_preprocessed"
    if not pre.exists():
        shutil.copytree(NNUNET_REF / "nnUNet_preprocessed" / "Dataset004_Hippocampus", pre / "Dataset004_Hippocampus")
    if splits_from is not None and splits_from.exists():  # the very same folds as segforge
        shutil.copy(splits_from, pre / "Dataset004_Hippocampus" / "splits_final.json")
    results = work / "nnunet_results"
    shutil.rmtree(results, ignore_errors=True)
    env = {**os.environ, "nnUNet_raw": str(NNUNET_REF / "nnUNet_raw"), "nnUNet_preprocessed": str(pre),
           "nnUNet_results": str(results)}  # fmt: skip
    out = work / "nnunet_result.json"
    run([str(NNUNET_PYTHON), "-c", NNUNET_DRIVER, str(args.budget * 60), str(args.fold), str(out)],
        env, work / "nnunet.log")  # fmt: skip
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=10.0, help="minutes of wall clock per tool")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--msd", type=Path, default=DEFAULT_MSD)
    parser.add_argument("--work", type=Path, default=Path("/tmp/segforge_train_budget"))
    parser.add_argument("--set", action="append", default=[], help="extra segforge --set KEY=VALUE")
    parser.add_argument("--splits", type=Path, help="splits_final.json for nnU-Net (default: segforge's)")
    parser.add_argument("--skip-nnunet", action="store_true")
    parser.add_argument("--skip-segforge", action="store_true")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    results = {}
    if not args.skip_segforge:
        results["segforge"] = segforge_side(args, args.work)
        print(json.dumps({"segforge": results["segforge"]}, indent=2), flush=True)
    if not args.skip_nnunet:
        splits = args.splits or args.work / "segforge" / "pre" / "Task004_Hippocampus" / "splits_final.json"
        results["nnunet"] = nnunet_side(args, args.work, splits)
        print(json.dumps({"nnunet": results["nnunet"]}, indent=2), flush=True)
    print(f"\nbudget {args.budget} min, fold {args.fold}, {os.cpu_count()} cores")
    print(f"{'tool':10} {'iterations':>10} {'s/iteration':>12} {'train wall s':>13}  validation Dice per label")
    for tool, r in results.items():
        dice = ", ".join(f"{k}: {v:.3f}" for k, v in r["dice"].items())
        s_it = f"{r['s_per_iteration']:.2f}" if r.get("s_per_iteration") else "-"
        print(f"{tool:10} {r['iterations']:>10} {s_it:>12} {r['train_wall_s']:>13.0f}  {dice}")
    (args.work / "train_budget_results.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
