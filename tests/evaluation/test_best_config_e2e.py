"""End to end on a tiny synthetic task: train 2 networks x 2 folds with --npz, find-best-config, run its commands.

Slow (about a minute of tiny trainings on 2 cores): run with ``pytest -m slow``.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import torch

from segforge.cli.app import main
from segforge.io.image_io import SimpleITKIO

FAST = ["--epochs", "2", "--iterations-per-epoch", "2", "--set", "val_iterations=1", "--set", "threads=1"]


def segforge(*args: str) -> None:
    try:
        main(list(args))
    except SystemExit as exc:
        assert exc.code in (None, 0), f"segforge {' '.join(args)} exited with {exc.code}"


@pytest.mark.slow
def test_find_best_config_and_its_instructions_on_real_trainings(tmp_path, monkeypatch):
    from segforge.testing.synthetic import make_task

    for name in ("raw", "preprocessed", "results"):
        monkeypatch.setenv(f"SEGFORGE_{name.upper()}", str(tmp_path / name))
    threads = torch.get_num_threads()
    task = make_task(tmp_path / "raw" / "Task077_Smoke", n_cases=10, shape=(16, 20, 18), seed=1, n_test=2)
    segforge("plan-and-preprocess", "--task", "77", "-np", "1", "--configs", "3d_fullres")
    for network in ("generic_unet", "residual_unet"):
        for fold in ("0", "1"):
            segforge("train", "--task", "77", "--fold", fold, "--network", network, "--npz", *FAST)
    torch.set_num_threads(threads)
    segforge("find-best-config", "--task", "77", "--folds", "0", "1", "-np", "1")
    dataset = tmp_path / "results" / "Task077_Smoke"
    instructions = json.loads((dataset / "inference_instructions.json").read_text())
    assert len(instructions["ranking"]) == 3 and instructions["skipped"] == []
    ensemble = next(e for e in instructions["ranking"] if e["kind"] == "ensemble")
    assert len(list(Path(ensemble["folder"]).glob("*.nii.gz"))) == 4  # 2 validation cases x 2 folds
    outputs = {}
    for command in instructions["commands"]:  # the instructions run as written, placeholders filled in
        words = [outputs.setdefault(w, str(tmp_path / w.lower())) if w.isupper() else w for w in shlex.split(command)]
        words = [str(task / "imagesTs") if w == str(tmp_path / "input_folder") else w for w in words]
        segforge(*words[1:])
    io = SimpleITKIO()
    for case in ("case_010", "case_011"):
        _, props = io.read_seg(tmp_path / "output_folder" / f"{case}.nii.gz")
        _, image_props = io.read_images([task / "imagesTs" / f"{case}_0000.nii.gz"])
        assert props.geometry_differences(image_props) == []
