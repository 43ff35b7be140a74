"""Make the nnU-Net v2 test fixture: tiny hippocampus models trained by nnU-Net itself, and its predictions.

Why: segforge claims to run nnU-Net v2's trained models (``segforge predict -m NNUNET_FOLDER``) with the
same results as ``nnUNetv2_predict_from_modelfolder``. The claim is only worth something against a
model nnU-Net trained and predictions nnU-Net made, so this script runs the real nnU-Net v2 (in its own
venv, see benchmarks/README.md) and stores what the default test run compares against, without needing
nnunetv2 installed:

    tests/interop/data/nnunet_hippocampus/<plans>/model/      plans.json, dataset.json, fold_0/checkpoint_final.pth
    tests/interop/data/nnunet_hippocampus/<plans>/reference/  nnU-Net's CASE.nii.gz and CASE.npz (--save_probabilities)

for ``nnUNetPlans`` (PlainConvUNet) and ``nnUNetResEncUNetMPlans`` (ResidualEncoderUNet), both with the
features cut (8-16-32-64, ResEnc 4-8-16-32), batches of 2 and the optimizer state dropped, so each checkpoint
is 1-2 MB. Run (CPU, one core; ~15 min each on a quiet machine, twice that on a busy one)::

    /work/nnunet-venv/bin/python scripts/make_nnunet_fixture.py [--work /tmp/nnu] [--iterations 50 --epochs 8 --lr 0.02]

Steps: MSD hippocampus (``SEGFORGE_TEST_DATA``/Task04_Hippocampus) as ``Dataset004_Hippocampus`` (symlinks,
the two reference cases held out), nnU-Net's fingerprint and planners, the plans copied with fewer
features, nnU-Net's preprocessing, a few iterations of nnU-Net's own trainer (a subclass changing only the
iteration counts, the learning rate and foreground oversampling; the stock variants import timm, broken in
that venv), then
``nnUNetv2_predict_from_modelfolder --save_probabilities`` on the held-out cases. Finished steps are skipped
when re-run with the same ``--work``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SEGFORGE_TEST_DATA", REPO.parent / "shared" / "data")) / "Task04_Hippocampus"
FIXTURE = REPO / "tests" / "interop" / "data" / "nnunet_hippocampus"
REFERENCE_CASES = ("hippocampus_393", "hippocampus_394")
#: features per stage of the fixture's networks (ResEnc's blocks hold ~4x the weights of plain stages)
TINY_FEATURES = {"nnUNetPlans": [8, 16, 32, 64], "nnUNetResEncUNetMPlans": [4, 8, 16, 32]}
TINY_BATCH = 2
#: plans name -> nnU-Net planner that makes it
PLANS = {"nnUNetPlans": "ExperimentPlanner", "nnUNetResEncUNetMPlans": "nnUNetPlannerResEncM"}
TINY = "Tiny"


def run(cmd: list[str], env: dict[str, str]) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, env=env, check=True)


def raw_dataset(raw: Path) -> Path:
    """Dataset004_Hippocampus in nnU-Net v2's layout, linking the MSD files; the reference cases go to imagesTs."""
    target = raw / "Dataset004_Hippocampus"
    if (target / "dataset.json").exists():
        return target
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        (target / sub).mkdir(parents=True, exist_ok=True)
    cases = sorted(p.name[: -len(".nii.gz")] for p in (DATA / "imagesTr").glob("hippocampus_*.nii.gz"))
    missing = [c for c in REFERENCE_CASES if c not in cases]
    if missing:
        raise SystemExit(f"{DATA}: reference cases {missing} not found")
    for case in cases:
        if case in REFERENCE_CASES:
            (target / "imagesTs" / f"{case}_0000.nii.gz").symlink_to(DATA / "imagesTr" / f"{case}.nii.gz")
            continue
        (target / "imagesTr" / f"{case}_0000.nii.gz").symlink_to(DATA / "imagesTr" / f"{case}.nii.gz")
        (target / "labelsTr" / f"{case}.nii.gz").symlink_to(DATA / "labelsTr" / f"{case}.nii.gz")
    dataset = {
        "channel_names": {"0": "MRI"},
        "labels": {"background": 0, "Anterior": 1, "Posterior": 2},
        "numTraining": len(cases) - len(REFERENCE_CASES),
        "file_ending": ".nii.gz",
        "name": "Hippocampus",
        "licence": "CC-BY-SA 4.0",
        "reference": "Vanderbilt University Medical Center",
    }
    (target / "dataset.json").write_text(json.dumps(dataset, indent=1))
    return target


def tiny_plans(pre: Path, plans_name: str) -> str:
    """A copy of nnU-Net's plans with fewer features and batch size 2 (a tiny checkpoint, quick iterations),
    named ``<plans>Tiny``."""
    folder = pre / "Dataset004_Hippocampus"
    plans = json.loads((folder / f"{plans_name}.json").read_text())
    plans["plans_name"] = plans_name + TINY
    for conf in plans["configurations"].values():
        if "architecture" in conf:
            kwargs = conf["architecture"]["arch_kwargs"]
            features = TINY_FEATURES[plans_name]
            kwargs["features_per_stage"] = (features + [features[-1]] * kwargs["n_stages"])[: kwargs["n_stages"]]
            conf["batch_size"] = TINY_BATCH
    (folder / f"{plans_name}{TINY}.json").write_text(json.dumps(plans, indent=1))
    return plans_name + TINY


TRAIN_CODE = """
import sys, torch
from batchgenerators.utilities.file_and_folder_operations import load_json
from nnunetv2.training.nnUNetTrainer import nnUNetTrainer as stock

# named like the stock trainer: nnU-Net's predictor finds the trainer class by the name stored in the
# checkpoint, importing trainer modules until one matches (some import timm, broken in that venv);
# only the iteration counts and the learning rate differ, the network and inference are the stock ones
class nnUNetTrainer(stock.nnUNetTrainer):
    '''nnU-Net's stock trainer for a few iterations (the fixture only needs weights nnU-Net trained).'''
    def __init__(self, plans, configuration, fold, dataset_json, device=torch.device('cpu')):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_iterations_per_epoch = int(sys.argv[3])
        self.num_val_iterations_per_epoch = 2
        self.num_epochs = int(sys.argv[4])
        self.initial_lr = float(sys.argv[5])
        self.oversample_foreground_percent = 1.0  # every patch holds hippocampus: foreground within minutes

pre, plans_name = sys.argv[1], sys.argv[2]
plans = load_json(f"{pre}/Dataset004_Hippocampus/{plans_name}.json")
dataset_json = load_json(f"{pre}/Dataset004_Hippocampus/dataset.json")
plans["continue_training"] = False  # what nnU-Net's run_training adds before making a trainer
trainer = nnUNetTrainer(plans, "3d_fullres", 0, dataset_json, torch.device("cpu"))
if sys.argv[6] == "continue":  # on from the last final checkpoint up to the (larger) number of epochs
    trainer.load_checkpoint(f"{trainer.output_folder}/checkpoint_final.pth")
trainer.run_training()
"""


def train(work: Path, plans_name: str, args: argparse.Namespace, env: dict[str, str]) -> Path:
    out = work / "results" / "Dataset004_Hippocampus" / f"nnUNetTrainer__{plans_name}__3d_fullres"
    done = (out / "fold_0" / "checkpoint_final.pth").exists()
    if not done or args.continue_training:
        script = work / "train_fixture.py"
        script.write_text(TRAIN_CODE)
        # no augmentation worker processes (0 = in this process): the machine is shared
        run(
            [
                sys.executable,
                str(script),
                str(work / "pre"),
                plans_name,
                str(args.iterations),
                str(args.epochs),
                str(args.lr),
                "continue" if done else "new",
            ],
            {**env, "nnUNet_n_proc_DA": "0"},
        )
    return out


def copy_model(trained: Path, target: Path) -> None:
    """What ``nnUNetv2_predict_from_modelfolder`` reads: plans.json, dataset.json, fold_0/checkpoint_final.pth."""
    shutil.rmtree(target, ignore_errors=True)
    (target / "fold_0").mkdir(parents=True)
    for name in ("plans.json", "dataset.json"):
        shutil.copy2(trained / name, target / name)
    slim_checkpoint(trained / "fold_0" / "checkpoint_final.pth", target / "fold_0" / "checkpoint_final.pth")


def slim_checkpoint(source: Path, target: Path) -> None:
    """nnU-Net's checkpoint without the optimizer state (half the file; nnU-Net's predictor never reads it).

    Read with segforge's safe reader (weights-only, numpy scalars allowed) and written with torch.save,
    as nnU-Net writes it: the logs, init_args, trainer name and mirroring axes stay.
    """
    import torch

    from segforge.interop.nnunet import load_nnunet_checkpoint

    payload = load_nnunet_checkpoint(source)
    payload["optimizer_state"] = None
    torch.save(payload, target)


def reference_predictions(model: Path, images: Path, target: Path, env: dict[str, str]) -> None:
    shutil.rmtree(target, ignore_errors=True)
    run(
        [
            str(Path(sys.executable).parent / "nnUNetv2_predict_from_modelfolder"),
            "-i",
            str(images),
            "-o",
            str(target),
            "-m",
            str(model),
            "-f",
            "0",
            "-chk",
            "checkpoint_final.pth",
            "--save_probabilities",
            "-device",
            "cpu",
            "-npp",
            "1",
            "-nps",
            "1",
            "--disable_progress_bar",
        ],
        env,
    )
    for pkl in target.glob("*.pkl"):  # nnU-Net's pickled properties: not needed, and no pickle in the repo
        pkl.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/nnu"))
    parser.add_argument("--iterations", type=int, default=50, help="training iterations per epoch")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--lr", type=float, default=0.02, help="initial learning rate (nnU-Net: 0.01)")
    parser.add_argument(
        "--continue-training",
        action="store_true",
        help="train a finished model on up to --epochs (its learning rate schedule stretched)",
    )
    parser.add_argument("--plans", nargs="+", default=list(PLANS), choices=list(PLANS))
    args = parser.parse_args()
    work = args.work.resolve()
    env = {
        **os.environ,
        "nnUNet_raw": str(work / "raw"),
        "nnUNet_preprocessed": str(work / "pre"),
        "nnUNet_results": str(work / "results"),
        "nnUNet_n_proc_DA": "1",
        "nnUNet_compile": "f",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    raw = raw_dataset(work / "raw")
    bin_dir = Path(sys.executable).parent
    pre = work / "pre" / "Dataset004_Hippocampus"
    if not (pre / "dataset_fingerprint.json").exists():
        run([str(bin_dir / "nnUNetv2_extract_fingerprint"), "-d", "4", "-np", "1"], env)
    for plans_name in args.plans:
        if not (pre / f"{plans_name}.json").exists():
            run([str(bin_dir / "nnUNetv2_plan_experiment"), "-d", "4", "-pl", PLANS[plans_name]], env)
        tiny = tiny_plans(work / "pre", plans_name)
        data_id = json.loads((pre / f"{tiny}.json").read_text())["configurations"]["3d_fullres"]["data_identifier"]
        if not (pre / data_id).is_dir():
            run(
                [str(bin_dir / "nnUNetv2_preprocess"), "-d", "4", "-plans_name", tiny, "-c", "3d_fullres", "-np", "1"],
                env,
            )
        trained = train(work, tiny, args, env)
        target = FIXTURE / plans_name
        copy_model(trained, target / "model")
        reference_predictions(target / "model", raw / "imagesTs", target / "reference", env)
        print(f"fixture written: {target}", flush=True)


if __name__ == "__main__":
    main()
