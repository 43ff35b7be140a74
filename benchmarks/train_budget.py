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

The nnU-Net side needs the peer environment (``nox -s peers``; ``SEGFORGE_PEER_PYTHON``) and
nnU-Net's preprocessed hippocampus data under ``NNUNET_REF`` (made by benchmarks/preprocess.py's
recipe); see benchmarks/_paths.py. Either side can be skipped. One command per figure row of
benchmarks/README.md (``## train_budget.py``)::

    python benchmarks/train_budget.py --budget 10 --fold 0 --disable-bf16 --skip-nnunet          # Dice >= 0.85
    python benchmarks/train_budget.py --budget 5 --fold 0 --disable-bf16 --skip-nnunet           # Dice >= 0.80
    python benchmarks/train_budget.py --budget 10 --fold 0 --disable-bf16 --hog --skip-nnunet    # busy: >= 0.80
    python benchmarks/train_budget.py --budget 10 --fold all --disable-bf16 --hog --skip-nnunet  # training share
    python benchmarks/train_budget.py --curve 2 5 10 20 --fold 0 --disable-bf16                  # both tools, PNG

``--disable-bf16`` sets ``SEGFORGE_DISABLE_BF16=1`` for segforge (the fp32 path of a CPU without
native bf16); ``--hog`` keeps one core busy (``python -c 'while True: pass'``) while each tool
trains. Fold ``all`` has no held-out cases: its row reports the manifest's ``time_spent``
(``training_share``: training steps and saving over the budget) instead of a Dice.

A full comparison takes about 2 x (budget + 5) minutes per budget. Timed assertions do not belong
in unit tests; this script only reports.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from _logged import run
from _nnunet_budget import run_nnunet_budget
from _paths import hippocampus_msd, nnunet_ref, peer_python, work_dir

SEGFORGE = [sys.executable, "-m", "segforge"]


@contextlib.contextmanager
def cpu_hog(enabled: bool):
    """One busy process for the duration (the issue's 'one core kept busy by a CPU hog')."""
    if not enabled:
        yield
        return
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        hog.kill()
        hog.wait()


def segforge_side(args: argparse.Namespace, work: Path, budget: float) -> dict:
    root = work / "segforge"
    env = {**os.environ, "SEGFORGE_RAW": str(root / "raw"), "SEGFORGE_PREPROCESSED": str(root / "pre"),
           "SEGFORGE_RESULTS": str(root / "results")}  # fmt: skip
    if args.disable_bf16:
        env["SEGFORGE_DISABLE_BF16"] = "1"
    log = work / "segforge.log"
    if not (root / "pre" / "Task004_Hippocampus" / "segforgePlans.json").exists():
        run([*SEGFORGE, "convert-msd", str(args.msd), "-np", "2"], env, log)
        run([*SEGFORGE, "plan-and-preprocess", "--task", "4", "-np", "2"], env, log)  # 2d and 3d_fullres
    shutil.rmtree(root / "results", ignore_errors=True)
    with cpu_hog(args.hog):
        train_wall = run([*SEGFORGE, "train", "--task", "4", "--fold", str(args.fold), "--time-budget", str(budget),
                          *sum((["--set", s] for s in args.set), [])], env, log)  # fmt: skip
    # the budget may have trained 2d instead of 3d_fullres: the manifest says which
    fold_dir = next((root / "results" / "Task004_Hippocampus").glob(f"*/*/fold_{args.fold}"))
    manifest = json.loads((fold_dir / "manifest.json").read_text())
    result = {
        "budget_min": budget,
        "configuration": manifest["configuration"],
        "iterations": manifest["progress"]["iterations"],
        "s_per_iteration": manifest["budget"]["measurements"].get("s_per_iteration"),
        "train_wall_s": train_wall,
        "pseudo_dice": manifest["results"]["final_pseudo_dice"],
        "time_spent": manifest.get("time_spent"),
        "budget_summary": manifest["budget"].get("summary"),
        "decisions": manifest["budget"]["decisions"],
        "dice": {},
    }
    if str(args.fold) == "all":  # no held-out cases: the row is the share of the budget spent training
        return result
    result["predict_wall_s"], result["dice"] = _predict_and_score(args, work, root, env, log, manifest)
    return result


def _predict_and_score(args, work: Path, root: Path, env: dict, log: Path, manifest: dict) -> tuple[float, dict]:
    """``segforge predict`` the fold's validation cases with the trained configuration, then evaluate."""
    splits = json.loads((root / "pre" / "Task004_Hippocampus" / "splits_final.json").read_text())
    val_ids = splits[int(args.fold)]["val"]
    inputs, preds, refs = work / "val_images", work / "segforge_pred", work / "val_labels"
    for folder in (inputs, preds, refs):
        shutil.rmtree(folder, ignore_errors=True)
    inputs.mkdir()
    refs.mkdir()
    raw = root / "raw" / "Task004_Hippocampus"
    for case in val_ids:
        (inputs / f"{case}_0000.nii.gz").symlink_to(raw / "imagesTr" / f"{case}_0000.nii.gz")
        (refs / f"{case}.nii.gz").symlink_to(raw / "labelsTr" / f"{case}.nii.gz")
    predict_wall = run([*SEGFORGE, "predict", "-i", str(inputs), "-o", str(preds), "--task", "4",
                        "--config", manifest["configuration"], "--folds", str(args.fold), "--checkpoint", "final"],
                       env, log)  # fmt: skip
    run([*SEGFORGE, "evaluate", "--ref", str(refs), "--pred", str(preds), "--labels", "1", "2",
         "-o", str(work / "segforge_summary.json")], env, log)  # fmt: skip
    return predict_wall, _mean_dice(json.loads((work / "segforge_summary.json").read_text()))


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


def nnunet_side(args: argparse.Namespace, work: Path, budget: float, splits_from: Path | None) -> dict:
    python, ref = peer_python(), nnunet_ref()
    if not python.exists():
        raise SystemExit(
            f"{python} missing: build the peer environment with `nox -s peers` (or set SEGFORGE_PEER_PYTHON)"
        )
    pre = work / "nnunet_preprocessed"
    if not pre.exists():
        shutil.copytree(ref / "nnUNet_preprocessed" / "Dataset004_Hippocampus", pre / "Dataset004_Hippocampus")
    if splits_from is not None and splits_from.exists():  # the very same folds as segforge
        shutil.copy(splits_from, pre / "Dataset004_Hippocampus" / "splits_final.json")
    results = work / "nnunet_results"
    shutil.rmtree(results, ignore_errors=True)
    env = {**os.environ, "nnUNet_raw": str(ref / "nnUNet_raw"), "nnUNet_preprocessed": str(pre),
           "nnUNet_results": str(results)}  # fmt: skip
    with cpu_hog(args.hog):
        result = run_nnunet_budget(python, env, budget_s=budget * 60, dataset="4", configuration="3d_fullres",
                                   fold=str(args.fold), out=work / "nnunet_result.json", log=work / "nnunet.log",
                                   validate=True)  # fmt: skip
    return {"budget_min": budget, **result}


def table(rows: list[tuple[str, dict]]) -> str:
    """A markdown table of the runs (the README's figures)."""
    lines = ["| tool | budget min | configuration | iterations | s/iteration | training share | Dice per label |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for tool, r in rows:
        dice = ", ".join(f"{k}: {v:.3f}" for k, v in r.get("dice", {}).items()) or "-"
        s_it = f"{r['s_per_iteration']:.2f}" if r.get("s_per_iteration") else "-"
        share = (r.get("time_spent") or {}).get("training_share")
        lines.append(f"| {tool} | {r['budget_min']:g} | {r.get('configuration', '3d_fullres')} | {r['iterations']} "
                     f"| {s_it} | {'-' if share is None else f'{share:.2f}'} | {dice} |")  # fmt: skip
    return "\n".join(lines)


def plot_curve(rows: list[tuple[str, dict]], path: Path) -> None:
    """Dice (mean over labels) against the budget, one line per tool."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for tool in dict(rows):
        points = sorted((r["budget_min"], sum(r["dice"].values()) / len(r["dice"])) for t, r in rows
                        if t == tool and r.get("dice"))  # fmt: skip
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=tool)
    ax.set_xlabel("budget (minutes)")
    ax.set_ylabel("validation Dice (mean of labels)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=10.0, help="minutes of wall clock per tool")
    parser.add_argument("--curve", type=float, nargs="+", help="several budgets in one run (e.g. 2 5 10 20), plotted")
    parser.add_argument("--fold", default="0", help="0..4 or all")
    parser.add_argument("--msd", type=Path, default=hippocampus_msd())
    parser.add_argument("--work", type=Path, default=work_dir("train_budget"))
    parser.add_argument("--set", action="append", default=[], help="extra segforge --set KEY=VALUE")
    parser.add_argument("--splits", type=Path, help="splits_final.json for nnU-Net (default: segforge's)")
    parser.add_argument("--disable-bf16", action="store_true", help="SEGFORGE_DISABLE_BF16=1: fp32 as without bf16")
    parser.add_argument("--hog", action="store_true", help="keep one core busy while each tool trains")
    parser.add_argument("--plot", type=Path, help="PNG of the Dice-vs-budget curve (default with --curve)")
    parser.add_argument("--skip-nnunet", action="store_true")
    parser.add_argument("--skip-segforge", action="store_true")
    args = parser.parse_args()
    if str(args.fold) == "all" and not args.skip_nnunet:
        parser.error("--fold all has no held-out cases to score nnU-Net on: add --skip-nnunet")
    args.work.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, dict]] = []
    for budget in args.curve or [args.budget]:
        if not args.skip_segforge:
            rows.append(("segforge", segforge_side(args, args.work, budget)))
            print(json.dumps({"segforge": rows[-1][1]}, indent=2), flush=True)
        if not args.skip_nnunet:
            splits = args.splits or args.work / "segforge" / "pre" / "Task004_Hippocampus" / "splits_final.json"
            rows.append(("nnU-Net v2", nnunet_side(args, args.work, budget, splits)))
            print(json.dumps({"nnunet": rows[-1][1]}, indent=2), flush=True)
    flags = " ".join(f for f, on in (("bf16 disabled", args.disable_bf16), ("CPU hog", args.hog)) if on)
    report = f"fold {args.fold}, {os.cpu_count()} cores {flags}\n\n{table(rows)}\n"
    print("\n" + report)
    (args.work / "train_budget_results.json").write_text(json.dumps(rows, indent=2) + "\n")
    (args.work / "train_budget_table.md").write_text(report)
    plot = args.plot or (args.work / "dice_vs_budget.png" if args.curve else None)
    if plot is not None:
        plot_curve(rows, plot)
        print(f"plot: {plot}")


if __name__ == "__main__":
    main()
