"""Benchmark: dataset fingerprint + planning + preprocessing, segforge against nnU-Net v2, in one run.

Both tools get the same raw dataset (nnU-Net v2 ``DatasetNNN_Name`` layout, which segforge reads
too), the same number of worker processes and the same warm page cache. Each runs as a
subprocess; wall time and peak resident memory of the whole process tree (the sum over the
process and its children, sampled every 20 ms with psutil) are reported with the ratio
segforge / nnU-Net. Goal: segforge <= 0.5x nnU-Net v2's wall time.

Needs an environment with both installed (see benchmarks/README.md for the recipe)::

    .nox/peers/bin/python benchmarks/preprocess.py                 # hippocampus (MSD folder)
    .nox/peers/bin/python benchmarks/preprocess.py --ct-like       # 20 synthetic CT-like cases
    .nox/peers/bin/python benchmarks/preprocess.py --keep /tmp/bench -np 2

Timed assertions do not belong in unit tests; this script only reports.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _paths import hippocampus_msd
from _rss import run_measured

DEFAULT_MSD = hippocampus_msd()
CT_LIKE_ID = 900
POLL_S = 0.02


# -- datasets ------------------------------------------------------------------------------------
def msd_to_v2(msd: Path, raw_root: Path, dataset_id: int = 4) -> Path:
    """An nnU-Net v2 Dataset folder for a single-channel MSD task, with symlinks (no copies)."""
    info = json.loads((msd / "dataset.json").read_text())
    name = msd.name.split("_", 1)[1]
    out = raw_root / f"Dataset{dataset_id:03d}_{name}"
    (out / "imagesTr").mkdir(parents=True, exist_ok=True)
    (out / "labelsTr").mkdir(parents=True, exist_ok=True)
    if len(info["modality"]) != 1:
        raise SystemExit(f"{msd}: only single-channel MSD tasks can be linked; convert it with segforge convert-msd")
    cases = sorted(p.name[: -len(".nii.gz")] for p in (msd / "imagesTr").glob("*.nii.gz") if not p.name.startswith("."))
    for case in cases:
        (out / "imagesTr" / f"{case}_0000.nii.gz").symlink_to(msd / "imagesTr" / f"{case}.nii.gz")
        (out / "labelsTr" / f"{case}.nii.gz").symlink_to(msd / "labelsTr" / f"{case}.nii.gz")
    dataset = {
        "name": name,
        "channel_names": info["modality"],
        "labels": {v: int(k) for k, v in info["labels"].items()},
        "numTraining": len(cases),
        "file_ending": ".nii.gz",
    }
    (out / "dataset.json").write_text(json.dumps(dataset, indent=2) + "\n")
    return out


def _ct_like_case(shape: tuple[int, ...], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A body (soft tissue in air) holding two nested ellipsoid organs; int16 HU image and uint8 labels."""
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, s, dtype=np.float32) for s in shape], indexing="ij")
    body = (y / 0.8) ** 2 + (x / 0.9) ** 2 <= 1.0
    centre = rng.uniform(-0.2, 0.2, 3).astype(np.float32)
    radii = rng.uniform(0.35, 0.5, 3).astype(np.float32)
    dist = ((z - centre[0]) / radii[0]) ** 2 + ((y - centre[1]) / radii[1]) ** 2 + ((x - centre[2]) / radii[2]) ** 2
    seg = np.zeros(shape, np.uint8)
    seg[(dist <= 1.0) & body] = 1
    seg[dist <= 0.4] = 2
    hu = np.where(body, 40.0, -1000.0).astype(np.float32)
    hu[seg == 1] = 120.0
    hu[seg == 2] = 250.0
    hu += rng.normal(0.0, 20.0, shape).astype(np.float32)
    return np.round(hu).astype(np.int16), seg


def write_ct_like_dataset(
    raw_root: Path,
    dataset_id: int = CT_LIKE_ID,
    num_cases: int = 20,
    shape: tuple[int, int, int] = (96, 160, 160),
    spacing: tuple[float, float, float] = (2.5, 0.8, 0.8),
    seed: int = 0,
) -> Path:
    """BASELINES.md's CT-like dataset: ``num_cases`` of ``shape`` voxels at ``spacing`` (array order z, y, x)."""
    import SimpleITK as sitk

    out = raw_root / f"Dataset{dataset_id:03d}_CTLike"
    (out / "imagesTr").mkdir(parents=True, exist_ok=True)
    (out / "labelsTr").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(num_cases):
        image, seg = _ct_like_case(shape, rng)
        for array, path in (
            (image, out / "imagesTr" / f"ct_{i:03d}_0000.nii.gz"),
            (seg, out / "labelsTr" / f"ct_{i:03d}.nii.gz"),
        ):
            itk = sitk.GetImageFromArray(array)
            itk.SetSpacing([float(s) for s in spacing[::-1]])
            sitk.WriteImage(itk, str(path), True)
    dataset = {
        "name": "CTLike",
        "channel_names": {"0": "CT"},
        "labels": {"background": 0, "organ": 1, "lesion": 2},
        "numTraining": num_cases,
        "file_ending": ".nii.gz",
    }
    (out / "dataset.json").write_text(json.dumps(dataset, indent=2) + "\n")
    return out


def warm_page_cache(folder: Path) -> None:
    """Read every file once so neither tool pays for the first cold read."""
    for path in folder.rglob("*"):
        if path.is_file():
            path.resolve().read_bytes()


# -- measuring -----------------------------------------------------------------------------------
@dataclass
class Measurement:
    name: str
    wall_s: float
    peak_rss: int
    returncode: int


def measure(name: str, cmd: list[str], env: dict[str, str], log: Path) -> Measurement:
    """Run ``cmd``; wall time and the peak RSS summed over its process tree."""
    return Measurement(name, *run_measured(cmd, env, log, POLL_S))


def nnunet_command(dataset_id: int, num_processes: int) -> list[str]:
    exe = Path(sys.executable).parent / "nnUNetv2_plan_and_preprocess"
    n = str(num_processes)
    return [str(exe), "-d", str(dataset_id), "-npfp", n, "-np", n, "--verify_dataset_integrity"]


def segforge_command(dataset_id: int, num_processes: int) -> list[str]:
    n = str(num_processes)
    return [sys.executable, "-m", "segforge", "plan-and-preprocess", "--task", str(dataset_id), "-np", n,
            "--verify-dataset-integrity"]  # fmt: skip


def _env(work: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        nnUNet_raw=str(work / "raw"),
        nnUNet_preprocessed=str(work / "nnunet_preprocessed"),
        nnUNet_results=str(work / "nnunet_results"),
        SEGFORGE_RAW=str(work / "raw"),
        SEGFORGE_PREPROCESSED=str(work / "segforge_preprocessed"),
        SEGFORGE_RESULTS=str(work / "segforge_results"),
        OMP_NUM_THREADS="1",
    )
    return env


def _report(results: list[Measurement], dataset: str, num_processes: int) -> None:
    print(f"\nfingerprint + plan + preprocess of {dataset}, -np {num_processes}")
    print(f"{'tool':<10} {'wall [s]':>9} {'peak RSS [GB]':>14} {'exit':>5}")
    for m in results:
        print(f"{m.name:<10} {m.wall_s:9.1f} {m.peak_rss / 1e9:14.2f} {m.returncode:5d}")
    nn, sf = results
    rss = sf.peak_rss / max(nn.peak_rss, 1)
    print(f"ratio segforge / nnU-Net: wall {sf.wall_s / nn.wall_s:.2f}x, peak RSS {rss:.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--msd", type=Path, default=DEFAULT_MSD, help="single-channel MSD task folder")
    parser.add_argument("--ct-like", action="store_true", help="use 20 synthetic CT-like cases instead")
    parser.add_argument("-np", dest="num_processes", type=int, default=2)
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it")
    parser.add_argument("--only", choices=("nnunet", "segforge"), default=None, help="run one tool only")
    args = parser.parse_args(argv)

    work = args.keep or Path(tempfile.mkdtemp(prefix="segforge_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    if args.ct_like:
        dataset = write_ct_like_dataset(work / "raw")
        dataset_id = CT_LIKE_ID
    else:
        dataset = msd_to_v2(args.msd, work / "raw")
        dataset_id = 4
    warm_page_cache(dataset)
    env = _env(work)
    runs = [("nnU-Net", nnunet_command), ("segforge", segforge_command)]
    if args.only:
        runs = [r for r in runs if r[0].lower().startswith(args.only[:4])]
    results = []
    for name, make in runs:
        m = measure(name, make(dataset_id, args.num_processes), env, work / f"{name}.log")
        if m.returncode:
            print(f"{name} failed (exit {m.returncode}); see {work / (name + '.log')}", file=sys.stderr)
        results.append(m)
    if len(results) == 2:
        _report(results, dataset.name, args.num_processes)
    else:
        print(results[0])
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return max(m.returncode for m in results)


if __name__ == "__main__":
    raise SystemExit(main())
