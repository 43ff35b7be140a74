"""Benchmark: real data beyond the hippocampus, segforge and nnU-Net v2 trained for the same wall time.

Two datasets of ``../shared/data``, each taken from its files as shipped by the commands of
docs/your-data.md, trained on all training cases (fold ``all``) for the same budget by both
tools, then both predict the held-out test cases (mirroring on unless ``--no-tta``) and are scored the same way:

* ``drive``: DRIVE, 20 RGB fundus photographs (2d) -> vessel Dice on the 20 test images, counted
  inside each image's field-of-view mask (DRIVE's own convention). nnU-Net v2 reads the same
  dataset imported with ``--file-ending .png`` through its NaturalImage2DIO.
* ``brats``: the BraTS 2015 sample, 2 channels (3d_fullres), 4 training and 2 test cases ->
  Dice of the three regions (whole tumour, tumour core, enhancing) through dataset.json's
  regions, for both tools with ``segforge evaluate --dataset-json``. Six cases are a smoke
  figure, not a benchmark of BraTS: report it, do not tune to it.

segforge: ``segforge train --fold all --config C --time-budget B``. nnU-Net: its stock trainer
stopped at the same wall time (benchmarks/_nnunet_budget.py), then ``nnUNetv2_predict`` with
``checkpoint_final.pth``. Needs the peer venv (``nox -s peers``; ``SEGFORGE_PEER_PYTHON``) and the
shared data (``SEGFORGE_TEST_DATA``). One command per figure row of benchmarks/README.md::

    python benchmarks/realdata_budget.py --dataset drive --budget 10
    python benchmarks/realdata_budget.py --dataset brats --budget 10 --no-tta

Writes ``realdata_<dataset>.json`` and the markdown table into ``--work``. Timed assertions do
not belong in unit tests; this script only reports.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from _logged import run
from _nnunet_budget import run_nnunet_budget
from _paths import peer_python, shared_data, work_dir

SEGFORGE = [sys.executable, "-m", "segforge"]


@dataclass(frozen=True)
class RealDataset:
    """One shipped dataset: its import command (docs/your-data.md), configuration and scoring."""

    task: str  # TaskNNN_Name in segforge's raw folder; nnU-Net's DatasetNNN_Name
    source: str  # folder under the shared data
    configuration: str
    import_args: tuple[str, ...]
    nnunet_ending: str | None = None  # re-import for nnU-Net with this file ending (None: use segforge's)
    notes: list[str] = field(default_factory=list)

    @property
    def task_id(self) -> str:
        return str(int(self.task[4:7]))

    @property
    def nnunet_name(self) -> str:
        return "Dataset" + self.task[4:]


DATASETS = {
    "drive": RealDataset(
        "Task504_DRIVE", "DRIVE", "2d",
        ("--channel", "R,G,B={split}/images/{case}_{split}.tif", "--labels", "{split}/1st_manual/{case}_manual1.gif",
         "--label-map", "0=0,255=1", "--label-name", "vessel=1", "--test", "split=test"),
        nnunet_ending=".png",
    ),
    "brats": RealDataset(
        "Task501_BraTS", "BraTS2015_sample", "3d_fullres",
        ("--channel", "FLAIR={split}/{case}/Flair_subtrMeanDivStd.nii.gz",
         "--channel", "T1c={split}/{case}/T1c_subtrMeanDivStd.nii.gz",
         "--labels", "{split}/{case}/OTMultiClass.nii.gz", "--mask", "{split}/{case}/brainmask.nii.gz",
         "--region", "whole tumour=1,2,3,4", "--region", "tumour core=1,3,4", "--region", "enhancing tumour=4",
         "--test", "split=test"),
    ),
}  # fmt: skip


def segforge_env(root: Path) -> dict[str, str]:
    return {**os.environ, "SEGFORGE_RAW": str(root / "raw"), "SEGFORGE_PREPROCESSED": str(root / "pre"),
            "SEGFORGE_RESULTS": str(root / "results")}  # fmt: skip


def import_dataset(ds: RealDataset, data: Path, env: dict[str, str], log: Path, *extra: str) -> Path:
    """``segforge import-dataset`` as docs/your-data.md writes it (resumes or does nothing when done)."""
    run([*SEGFORGE, "import-dataset", str(data / ds.source), "--name", ds.task, *ds.import_args, "--link",
         *extra], env, log)  # fmt: skip
    return Path(env["SEGFORGE_RAW"]) / ds.task


def segforge_side(ds: RealDataset, args: argparse.Namespace, work: Path) -> dict:
    root = work / "segforge"
    env, log = segforge_env(root), work / "segforge.log"
    raw = import_dataset(ds, args.data, env, log)
    if not (root / "pre" / ds.task / "segforgePlans.json").exists():
        run([*SEGFORGE, "plan-and-preprocess", "--task", ds.task_id, "-c", ds.configuration, "-np", "2"], env, log)
    shutil.rmtree(root / "results", ignore_errors=True)
    train_wall = run([*SEGFORGE, "train", "--task", ds.task_id, "--fold", "all", "--config", ds.configuration,
                      "--time-budget", str(args.budget)], env, log)  # fmt: skip
    manifest = json.loads(next((root / "results" / ds.task).glob("*/*/fold_all/manifest.json")).read_text())
    preds = work / "segforge_pred"
    shutil.rmtree(preds, ignore_errors=True)
    predict_wall = run([*SEGFORGE, "predict", "-i", str(raw / "imagesTs"), "-o", str(preds), "--task", ds.task_id,
                        "-c", ds.configuration, "--folds", "all", "--checkpoint", "final",
                        *(["--no-tta"] if args.no_tta else [])], env, log)  # fmt: skip
    return {
        "iterations": manifest["progress"]["iterations"],
        "s_per_iteration": manifest["budget"]["measurements"].get("s_per_iteration"),
        "train_wall_s": round(train_wall, 1),
        "predict_wall_s": round(predict_wall, 1),
        "time_spent": manifest.get("time_spent"),
        "budget_summary": manifest["budget"].get("summary"),
        "dice": score(ds, args, preds, raw, env, work / "segforge_summary.json", log),
    }


def nnunet_side(ds: RealDataset, args: argparse.Namespace, work: Path) -> dict:
    python = peer_python()
    if not python.exists():
        raise SystemExit(f"{python} missing: build the peer environment with `nox -s peers` (or SEGFORGE_PEER_PYTHON)")
    root = work / "nnunet"
    if ds.nnunet_ending:  # nnU-Net's natural-image reader wants its own endings: the same import, other files
        src = import_dataset(ds, args.data, segforge_env(root / "import"), work / "nnunet.log",
                             "--file-ending", ds.nnunet_ending)  # fmt: skip
    else:
        src = import_dataset(ds, args.data, segforge_env(work / "segforge"), work / "nnunet.log")
    raw = root / "nnUNet_raw" / ds.nnunet_name
    if not raw.exists():
        raw.parent.mkdir(parents=True, exist_ok=True)
        raw.symlink_to(src.resolve(), target_is_directory=True)
    env = {**os.environ, "nnUNet_raw": str(root / "nnUNet_raw"), "nnUNet_preprocessed": str(root / "pre"),
           "nnUNet_results": str(root / "results")}  # fmt: skip
    bin_dir, log = python.parent, work / "nnunet.log"
    if not (root / "pre" / ds.nnunet_name / "nnUNetPlans.json").exists():
        run([str(bin_dir / "nnUNetv2_plan_and_preprocess"), "-d", ds.task_id, "-c", ds.configuration,
             "-np", "1", "-npfp", "1"], env, log)  # fmt: skip
    shutil.rmtree(root / "results", ignore_errors=True)
    started = time.monotonic()
    result = run_nnunet_budget(python, env, budget_s=args.budget * 60, dataset=ds.task_id,
                               configuration=ds.configuration, fold="all", out=work / "nnunet_result.json",
                               log=log, validate=False)  # fmt: skip
    train_wall = time.monotonic() - started
    preds = work / "nnunet_pred"
    shutil.rmtree(preds, ignore_errors=True)
    predict_wall = run([str(bin_dir / "nnUNetv2_predict"), "-i", str(raw / "imagesTs"), "-o", str(preds),
                        "-d", ds.task_id, "-c", ds.configuration, "-f", "all", "-chk", "checkpoint_final.pth",
                        "-device", "cpu", "--disable_progress_bar", *(["--disable_tta"] if args.no_tta else [])],
                       env, log)  # fmt: skip
    sf_raw = Path(segforge_env(work / "segforge")["SEGFORGE_RAW"]) / ds.task
    return {
        "iterations": result["iterations"],
        "s_per_iteration": round(result["s_per_iteration"], 3),
        "patch_size": result["patch_size"],
        "batch_size": result["batch_size"],
        "final_lr": result["final_lr"],
        "train_wall_s": round(train_wall, 1),
        "predict_wall_s": round(predict_wall, 1),
        "dice": score(ds, args, preds, sf_raw, segforge_env(work / "segforge"), work / "nnunet_summary.json", log),
    }


def score(ds: RealDataset, args: argparse.Namespace, preds: Path, raw: Path, env: dict, out: Path, log: Path) -> dict:
    """Per-label (DRIVE: inside the field of view) or per-region (BraTS) Dice of one tool's predictions."""
    if ds.configuration == "2d":
        return {"vessel (inside FOV)": round(drive_fov_dice(preds, raw / "labelsTs", args.data / ds.source), 4)}
    run([*SEGFORGE, "evaluate", "--ref", str(raw / "labelsTs"), "--pred", str(preds),
         "--dataset-json", str(raw / "dataset.json"), "-o", str(out)], env, log)  # fmt: skip
    dataset = json.loads((raw / "dataset.json").read_text())
    foreground = [k for k in dataset["labels"] if k != "background"]
    written = dataset.get("regions_class_order") or [dataset["labels"][k] for k in foreground]
    names = {str(v): k for k, v in zip(foreground, written, strict=True)}  # label in the files -> its name
    mean = json.loads(out.read_text())["mean"]
    return {names.get(k, k): round(v["dice"], 4) for k, v in mean.items() if isinstance(v, dict) and "dice" in v}


def drive_fov_dice(preds: Path, refs: Path, drive: Path) -> float:
    """Mean vessel Dice over the test images, counting only pixels inside DRIVE's field-of-view masks."""
    import numpy as np

    from segforge.io.natural_image import NaturalImage2DIO

    io, dice = NaturalImage2DIO(), []
    for ref in sorted(refs.iterdir()):
        case = ref.name.split(".")[0]
        pred = next(p for p in preds.iterdir() if p.name.split(".")[0] == case)
        fov = io.read_seg(drive / "test" / "mask" / f"{case}_test_mask.gif")[0][0] > 0
        p, r = io.read_seg(pred)[0][0][fov] == 1, io.read_seg(ref)[0][0][fov] == 1
        dice.append(2 * float((p & r).sum()) / max(int(p.sum() + r.sum()), 1))
    return float(np.mean(dice))


def table(ds_name: str, budget: float, rows: dict[str, dict], tta: str = "") -> str:
    lines = [f"{ds_name}, fold all, {budget:g} min per tool, {os.cpu_count()} cores{tta}", "",
             "| tool | iterations | s/iteration | train wall | predict wall | Dice |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for tool, r in rows.items():
        dice = ", ".join(f"{k}: {v:.3f}" for k, v in r["dice"].items())
        s_it = f"{r['s_per_iteration']:.2f}" if r.get("s_per_iteration") else "-"
        lines.append(f"| {tool} | {r['iterations']} | {s_it} | {r['train_wall_s']:.0f} s | "
                     f"{r['predict_wall_s']:.0f} s | {dice} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(DATASETS), required=True)
    parser.add_argument("--budget", type=float, default=10.0, help="minutes of wall clock per tool")
    parser.add_argument("--data", type=Path, default=shared_data(), help="folder holding DRIVE/, BraTS2015_sample/")
    parser.add_argument("--work", type=Path, help="scratch folder (default <tmp>/segforge_bench/realdata_<dataset>)")
    parser.add_argument(
        "--no-tta",
        action="store_true",
        help="both tools predict without mirroring (8 flips of 128^3 BraTS tiles: ~20 min a case)",
    )
    parser.add_argument("--skip-nnunet", action="store_true")
    parser.add_argument("--skip-segforge", action="store_true")
    args = parser.parse_args()
    ds = DATASETS[args.dataset]
    if not (args.data / ds.source).is_dir():
        raise SystemExit(f"{args.data / ds.source} not found: set SEGFORGE_TEST_DATA or --data")
    work = args.work or work_dir(f"realdata_{args.dataset}")
    work.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict] = {}
    if not args.skip_segforge:
        rows["segforge"] = segforge_side(ds, args, work)
        print(json.dumps({"segforge": rows["segforge"]}, indent=1), flush=True)
    if not args.skip_nnunet:
        rows["nnU-Net v2"] = nnunet_side(ds, args, work)
        print(json.dumps({"nnU-Net v2": rows["nnU-Net v2"]}, indent=1), flush=True)
    report = table(args.dataset, args.budget, rows, ", no mirroring" if args.no_tta else ", mirroring on")
    print("\n" + report)
    (work / f"realdata_{args.dataset}.json").write_text(json.dumps(rows, indent=1) + "\n")
    (work / f"realdata_{args.dataset}_table.md").write_text(report)


if __name__ == "__main__":
    main()
