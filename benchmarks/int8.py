"""Benchmark: is int8 worth offering? A trained model's Dice and speed in fp32 and int8 on real cases.

Issue #20 asks for int8 (dynamic or static quantization through one of the runtimes) only if its
Dice on real hippocampus validation cases stays within 0.005 of fp32. This script measures that
on any trained segforge model and its held-out cases, one process, one table:

* ``torch fp32`` - segforge's eager path (``--precision fp32 --backend torch``), the reference;
* ``torch bf16`` - the same under bf16 autocast (``--precision bf16``, the default on CPUs with
  native bf16), for its agreement with fp32 on a trained model;
* ``onnxruntime fp32`` - the same ONNX file ``--backend onnxruntime`` exports and caches;
* ``onnxruntime int8 static`` - that file quantized by ONNX Runtime (QDQ, int8 weights per
  output channel, uint8 activations), calibrated (min/max) on the tiles of ``--calib-images``
  cases, (cases of the scored folder are left out);
* ``onnxruntime int8 dynamic`` - weights quantized ahead, activations per batch (ConvInteger).

Every variant predicts the same cases through the same sliding window (only the forward pass
differs: the predictor's forward is swapped), then ``segforge evaluate``'s Dice is taken per
label. Reported: Dice per label and its difference to fp32, voxel agreement with fp32, wall
seconds for all cases and seconds inside the forward pass. Example (the fold-0 model of a
``train_budget.py`` run and its 60 unseen cases)::

    python benchmarks/int8.py --model-dir RESULTS/Task004_Hippocampus/3d_fullres/RUN/fold_0 \\
        --images VAL/images --labels VAL/labels --calib-images RAW/imagesTr --json /tmp/int8.json

Timed assertions do not belong in unit tests; this script only reports.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


class TimedForward:
    """A forward callable that adds up the seconds spent in it (and optionally keeps its inputs)."""

    def __init__(self, run: Any, keep: list[np.ndarray] | None = None) -> None:
        self.run, self.keep, self.seconds = run, keep, 0.0

    def __call__(self, x: Any) -> Any:
        import torch

        if self.keep is not None:
            self.keep.append(x.detach().cpu().numpy().copy())
        start = time.perf_counter()
        out = self.run(x)
        self.seconds += time.perf_counter() - start
        return out if isinstance(out, torch.Tensor) else torch.from_numpy(out)


class Batches:
    """ONNX Runtime's calibration reader over recorded tile batches."""

    def __init__(self, batches: list[np.ndarray]) -> None:
        self.items = iter([{"x": b} for b in batches])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.items, None)

    def rewind(self) -> None:  # pragma: no cover - not used by min/max calibration
        pass


def bf16(net: Any) -> Any:
    """``net`` under bf16 autocast, as ``--precision bf16`` runs it (slow where the CPU lacks native bf16)."""
    import torch

    def run(x: Any) -> Any:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = net(x)
        return (out[0] if isinstance(out, (list, tuple)) else out).float()

    return run


def session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    s = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda x: s.run(None, {"x": x.detach().cpu().numpy()})[0]


def quantized(fp32_onnx: Path, calibration: list[np.ndarray], work: Path) -> dict[str, Path]:
    """The static (QDQ, calibrated) and dynamic int8 versions of ``fp32_onnx``."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = work / "prepared.onnx"
    quant_pre_process(str(fp32_onnx), str(prepared), skip_symbolic_shape=True)
    static, dynamic = work / "int8_static.onnx", work / "int8_dynamic.onnx"
    quantize_static(str(prepared), str(static), Batches(calibration), quant_format=QuantFormat.QDQ,
                    per_channel=True, weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                    calibrate_method=CalibrationMethod.MinMax)  # fmt: skip
    quantize_dynamic(str(prepared), str(dynamic), weight_type=QuantType.QUInt8)
    return {"onnxruntime int8 static": static, "onnxruntime int8 dynamic": dynamic}


def case_ids(folder: Path, limit: int | None, exclude: frozenset[str] | set[str] = frozenset()) -> list[str]:
    ids = sorted({p.name.rsplit("_", 1)[0] for p in folder.iterdir() if "_0000." in p.name} - set(exclude))
    return ids[:limit] if limit else ids


def subset(folder: Path, ids: list[str], dest: Path) -> Path:
    """A folder of links to the channel files of ``ids`` (so predict_folder sees only those cases)."""
    dest.mkdir(parents=True, exist_ok=True)
    for p in folder.iterdir():
        if p.name.rsplit("_", 1)[0] in ids:
            (dest / p.name).symlink_to(p.resolve())
    return dest


def agreement(a: Path, b: Path) -> float:
    import SimpleITK as sitk

    same = total = 0
    for f in sorted(a.glob("*.nii.gz")):
        x = sitk.GetArrayFromImage(sitk.ReadImage(str(f)))
        y = sitk.GetArrayFromImage(sitk.ReadImage(str(b / f.name)))
        same, total = same + int((x == y).sum()), total + x.size
    return same / max(total, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", type=Path, required=True, help="a trained run or fold folder")
    ap.add_argument("--images", type=Path, required=True, help="held-out cases (CASE_0000.nii.gz ...)")
    ap.add_argument("--labels", type=Path, required=True, help="their reference segmentations")
    ap.add_argument("--calib-images", type=Path, required=True, help="other cases whose tiles calibrate int8")
    ap.add_argument("--calib-cases", type=int, default=16)
    ap.add_argument("--cases", type=int, default=None, help="score only the first N held-out cases")
    ap.add_argument("--no-tta", action="store_true", help="no mirroring (default: as the model was trained)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    import torch

    from segforge.api import Predictor
    from segforge.evaluation.evaluate_folder import evaluate_folder
    from segforge.inference.backends.exported import export_onnx

    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    work = Path(tempfile.mkdtemp(prefix="segforge_int8_"))
    pred = Predictor(args.model_dir, precision="fp32", backend="torch", tta=not args.no_tta, postprocessing=False)
    window = pred._pipeline.window  # the benchmark swaps the forward pass; everything else is segforge predict's
    net = window.networks[0]
    labels = sorted(v for v in pred.labels.values() if v > 0)
    scored_ids = case_ids(args.images, args.cases)
    scored = subset(args.images, scored_ids, work / "scored")
    refs = work / "refs"
    refs.mkdir()
    for cid in scored_ids:
        for ref in args.labels.glob(f"{cid}.*"):
            (refs / ref.name).symlink_to(ref.resolve())
    calib_ids = case_ids(args.calib_images, args.calib_cases, exclude=set(case_ids(args.images, None)))
    calib_in = subset(args.calib_images, calib_ids, work / "calib")

    calibration: list[np.ndarray] = []
    window.forwards = [TimedForward(net, keep=calibration)]
    pred.predict_folder(calib_in, work / "calib_out")
    example = torch.from_numpy(calibration[0][:1])
    fp32_onnx = export_onnx(net, example)
    variants = {"torch fp32": net, "torch bf16": bf16(net), "onnxruntime fp32": session(fp32_onnx, threads)}
    start = time.perf_counter()
    for name, path in quantized(fp32_onnx, calibration, work).items():
        variants[name] = session(path, threads)
    quantize_s = time.perf_counter() - start

    rows: dict[str, dict[str, Any]] = {}
    for name, run in variants.items():
        out = work / name.replace(" ", "_")
        forward = TimedForward(run)
        window.forwards = [forward]
        t0 = time.perf_counter()
        pred.predict_folder(scored, out)
        wall = time.perf_counter() - t0
        summary = evaluate_folder(refs, out, labels)
        dice = {str(k): round(float(summary.mean[str(k)]["dice"]), 4) for k in labels}
        rows[name] = {"wall_s": round(wall, 1), "forward_s": round(forward.seconds, 1), "dice": dice,
                      "folder": str(out)}  # fmt: skip
        print(name, rows[name], flush=True)
    ref = rows["torch fp32"]
    for row in rows.values():
        row["dice_change"] = {k: round(v - ref["dice"][k], 4) for k, v in row["dice"].items()}
        row["agreement_with_fp32"] = round(agreement(Path(ref["folder"]), Path(row["folder"])), 6)
        row["speed_vs_torch_fp32"] = round(ref["forward_s"] / max(row["forward_s"], 1e-9), 2)
    result = {"cases": len(case_ids(scored, None)), "calibration_batches": len(calibration), "threads": threads,
              "tta": not args.no_tta, "quantize_s": round(quantize_s, 1), "rows": rows}  # fmt: skip
    print("| variant | Dice per label (change vs fp32) | voxels as fp32 | forward s | speed vs torch fp32 | wall s |")
    print("|---|---|---|---|---|---|")
    for name, row in rows.items():
        dice = ", ".join(f"{v:.4f} ({row['dice_change'][k]:+.4f})" for k, v in row["dice"].items())
        print(f"| {name} | {dice} | {row['agreement_with_fp32']:.4%} | {row['forward_s']} | "
              f"{row['speed_vs_torch_fp32']}x | {row['wall_s']} |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    shutil.rmtree(work / "calib", ignore_errors=True)


if __name__ == "__main__":
    main()
