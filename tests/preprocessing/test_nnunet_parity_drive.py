"""DRIVE (2D RGB PNG, nnU-Net's NaturalImage2DIO) planned and preprocessed by segforge and by nnU-Net v2.

The same raw dataset in nnU-Net v2's format (``imagesTr/CASE_0000.png`` holding R, G, B;
``"file_ending": ".png"``) made from real DRIVE images at full size. nnU-Net extracts its
fingerprint and plans in a subprocess (its paths come from environment variables read at import);
segforge plans the same folder. The 2d plans must agree, and the preprocessed arrays of each
case (nnU-Net's ``DefaultPreprocessor.run_case`` reading the PNGs itself) must equal segforge's.

Skipped unless nnunetv2 is importable (it is not a dependency): run it where both are installed,
e.g. ``/work/nnunet-venv/bin/python -m pytest -m slow tests/preprocessing/test_nnunet_parity_drive.py``
(one to three minutes: nnU-Net plans in a subprocess, five 584x565 images are read several times).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from segforge.testing.cli import run_segforge as cli  # segforge ARGS in this process -> exit code

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "configurations"))
from drive_png import DATASET, write_png_dataset  # noqa: E402

pytest.importorskip("nnunetv2")
pytestmark = pytest.mark.slow

N_TRAIN = 5
#: largest allowed |segforge - nnU-Net| of a normalized intensity (no resampling at spacing 1: float rounding only)
DATA_ATOL = 1e-4
NNUNET_PLAN = (
    "import sys; from nnunetv2.experiment_planning.plan_and_preprocess_entrypoints import plan_and_preprocess_entry; "
    "sys.argv = ['nnUNetv2_plan_and_preprocess', '-d', '42', '-c', '2d', '-npfp', '1', '--no_pp']; "
    "plan_and_preprocess_entry()"
)


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Both tools' plans (and fingerprints) of one DRIVE PNG dataset at full image size."""
    root = tmp_path_factory.mktemp("drive_parity")
    task, _ = write_png_dataset(root / "raw", n_train=N_TRAIN, n_test=0, size=None)
    env = {**os.environ, "nnUNet_raw": str(root / "raw"), "nnUNet_preprocessed": str(root / "nnunet_pre"),
           "nnUNet_results": str(root / "nnunet_results"), "OMP_NUM_THREADS": "1"}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", NNUNET_PLAN], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    theirs = root / "nnunet_pre" / DATASET
    with pytest.MonkeyPatch.context() as mp:
        for var, sub in (("SEGFORGE_RAW", "raw"), ("SEGFORGE_PREPROCESSED", "pre"), ("SEGFORGE_RESULTS", "res")):
            mp.setenv(var, str(root / sub))
        assert cli("plan", "--task", "42", "-np", "1", "-c", "2d") == 0
    ours = root / "pre" / DATASET
    return {
        "task": task,
        "ours": json.loads((ours / "segforgePlans.json").read_text()),
        "theirs": json.loads((theirs / "nnUNetPlans.json").read_text()),
        "our_fingerprint": json.loads((ours / "fingerprint.json").read_text()),
        "their_fingerprint": json.loads((theirs / "dataset_fingerprint.json").read_text()),
        "plans_file": ours / "segforgePlans.json",
    }


def test_fingerprints_agree(planned: dict) -> None:
    ours, theirs = planned["our_fingerprint"], planned["their_fingerprint"]
    assert [c["spacing"] for c in ours["cases"]] == theirs["spacings"] == [[999.0, 1.0, 1.0]] * N_TRAIN
    assert [c["shape_after_crop"] for c in ours["cases"]] == theirs["shapes_after_crop"]
    assert ours["median_relative_size_after_cropping"] == pytest.approx(theirs["median_relative_size_after_cropping"])
    for channel in ("0", "1", "2"):
        mine = ours["foreground_intensity_properties_per_channel"][channel]
        want = theirs["foreground_intensity_properties_per_channel"][channel]
        for key in ("mean", "median", "std", "min", "max", "percentile_99_5", "percentile_00_5"):
            assert mine[key] == pytest.approx(want[key], rel=1e-5, abs=1e-5), (channel, key)


def test_2d_plans_agree(planned: dict) -> None:
    ours, theirs = planned["ours"]["configurations"]["2d"], planned["theirs"]["configurations"]["2d"]
    assert ours["spacing"] == pytest.approx(theirs["spacing"])
    assert ours["patch_size"] == theirs["patch_size"]
    assert ours["batch_size"] == theirs["batch_size"]
    assert ours["median_image_size_in_voxels"] == pytest.approx(theirs["median_image_size_in_voxels"])
    assert ours["normalization"] == ["zscore"] * 3 and theirs["normalization_schemes"] == ["ZScoreNormalization"] * 3
    assert ours["use_mask_for_norm"] == theirs["use_mask_for_norm"]
    arch, params = theirs["architecture"]["arch_kwargs"], ours["network"]["params"]
    assert params["features_per_stage"] == arch["features_per_stage"]
    assert params["strides"] == arch["strides"]
    assert params["kernel_sizes"] == arch["kernel_sizes"]
    assert planned["theirs"]["image_reader_writer"] == "NaturalImage2DIO" and planned["ours"]["image_io"] == "natural2d"


def test_preprocessed_arrays_agree(planned: dict) -> None:
    from nnunetv2.preprocessing.preprocessors.default_preprocessor import DefaultPreprocessor
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    from segforge.planning import load_plans
    from segforge.preprocessing.preprocessor import CasePreprocessor

    task = planned["task"]
    manager = PlansManager(planned["theirs"])
    dataset_json = json.loads((task / "dataset.json").read_text())
    pre = CasePreprocessor(load_plans(planned["plans_file"]), ["2d"])
    for image in sorted((task / "imagesTr").glob("*_0000.png")):
        case = image.name.removesuffix("_0000.png")
        label = task / "labelsTr" / f"{case}.png"
        ours = next(iter(pre.run_files([image], label, case).values()))
        data, seg, props = DefaultPreprocessor(verbose=False).run_case(
            [str(image)], str(label), manager, manager.get_configuration("2d"), dataset_json
        )
        assert ours.data.shape == data.shape == (3, 1, *ours.data.shape[2:]), case
        assert ours.props.bbox == [tuple(b) for b in props["bbox_used_for_cropping"]], case
        assert float(np.abs(ours.data - data).max()) <= DATA_ATOL, case
        assert int((ours.seg != seg).sum()) == 0, case
