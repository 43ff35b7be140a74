"""nnU-Net v2 model folder end to end: ``nnUNetv2_predict_from_modelfolder`` vs ``segforge predict -m`` on it.

Both CLIs predict the same raw images with the same nnU-Net-trained model folder (default: the
test fixture's hippocampus model, tests/interop/data/nnunet_hippocampus/nnUNetPlans/model, on the
held-out cases, or ``--model``/``--images`` of your own); wall time and peak RSS summed over each
process tree are printed with the segforge/nnU-Net ratio, and the two outputs are compared as
the interop tests do (probability mean absolute difference, argmax agreement). segforge's
one-off conversion of the folder is timed separately (a cold cache) from the prediction with a
warm cache (what every later run sees). Run in the nnU-Net venv (benchmarks/README.md)::

    .nox/peers/bin/python benchmarks/nnunet_model.py [--model FOLDER --images DIR] [--keep /tmp/nb]

Timings only mean something on a quiet machine; the ratio is what to report.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from _rss import run_measured

HERE = Path(__file__).resolve().parent
FIXTURE = HERE.parent / "tests" / "interop" / "data" / "nnunet_hippocampus" / "nnUNetPlans" / "model"
DATA = Path(os.environ.get("SEGFORGE_TEST_DATA", HERE.parents[1] / "shared" / "data")) / "Task04_Hippocampus"
CASES = ("hippocampus_393", "hippocampus_394")


def default_images(work: Path) -> Path:
    folder = work / "images"
    folder.mkdir(parents=True, exist_ok=True)
    for case in CASES:
        link = folder / f"{case}_0000.nii.gz"
        if not link.exists():
            link.symlink_to(DATA / "imagesTr" / f"{case}.nii.gz")
    return folder


def compare(ours: Path, theirs: Path) -> dict[str, float]:
    """Worst case over the cases: probability mean absolute difference and argmax agreement."""
    mads, agreements = [], []
    for npz in sorted(theirs.glob("*.npz")):
        with np.load(npz, allow_pickle=False) as a, np.load(ours / npz.name, allow_pickle=False) as b:
            ref, got = a["probabilities"].astype(np.float32), b["probabilities"].astype(np.float32)
        mads.append(float(np.abs(ref - got).mean()))
        agreements.append(float((ref.argmax(0) == got.argmax(0)).mean()))
    return {"max_probability_mad": max(mads), "min_argmax_agreement": min(agreements), "cases": len(mads)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=FIXTURE, help="nnU-Net v2 model folder")
    parser.add_argument("--images", type=Path, help="raw images (CASE_0000.nii.gz); default the held-out cases")
    parser.add_argument("--folds", nargs="+", default=["0"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="work folder to keep (default: a temporary one)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="nnunet_model_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    images = args.images or default_images(work)
    for path in images.iterdir():  # warm the page cache for both
        path.read_bytes()
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads),
           "nnUNet_raw": str(work), "nnUNet_preprocessed": str(work), "nnUNet_results": str(work),
           "SEGFORGE_CACHE": str(work / "cache")}  # fmt: skip
    shutil.rmtree(work / "cache", ignore_errors=True)
    nn_cmd = [str(bin_dir / "nnUNetv2_predict_from_modelfolder"), "-i", str(images), "-o", str(work / "out_nnunet"),
              "-m", str(args.model), "-f", *args.folds, "-chk", "checkpoint_final.pth", "--save_probabilities",
              "-device", "cpu", "--disable_progress_bar"]  # fmt: skip
    sf_cmd = [str(bin_dir / "segforge"), "predict", "-m", str(args.model), "-i", str(images), "-f", *args.folds,
              "--checkpoint", "final", "--save-probabilities", "--device", "cpu", "--precision", "fp32"]  # fmt: skip
    runs = {}
    for name, cmd in (("nnunet", nn_cmd), ("segforge_cold_cache", [*sf_cmd, "-o", str(work / "out_cold")]),
                      ("segforge", [*sf_cmd, "-o", str(work / "out_segforge")])):  # fmt: skip
        wall, peak, code = run_measured(cmd, env, work / f"{name}.log", 0.02)
        if code != 0:
            raise SystemExit(f"{name} failed (exit {code}); see {work / f'{name}.log'}")
        runs[name] = {"wall_s": round(wall, 2), "peak_rss_gb": round(peak / 1e9, 3)}
        print(f"{name:22s} {wall:7.2f} s  peak RSS {peak / 1e9:6.3f} GB", flush=True)
    for name in ("segforge_cold_cache", "segforge"):
        runs[name]["wall_ratio"] = round(runs[name]["wall_s"] / runs["nnunet"]["wall_s"], 3)
        runs[name]["rss_ratio"] = round(runs[name]["peak_rss_gb"] / runs["nnunet"]["peak_rss_gb"], 3)
        print(f"{name}/nnunet: {runs[name]['wall_ratio']}x wall, {runs[name]['rss_ratio']}x peak RSS")
    agreement = compare(work / "out_segforge", work / "out_nnunet")
    print(json.dumps(agreement))
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "agreement": agreement}, indent=1))


if __name__ == "__main__":
    main()
