"""``segforge predict -m NNUNET_FOLDER`` gives nnU-Net's predictions; ``import-nnunet`` packages the same model.

The reference is ``nnUNetv2_predict_from_modelfolder --save_probabilities`` on the real held-out
hippocampus cases, stored with the fixture (``scripts/make_nnunet_fixture.py``), so the default run
needs no nnU-Net; ``test_live_nnunet_agrees`` re-runs nnU-Net itself where nnunetv2 is importable.
Criteria (issue 19): probabilities with nnU-Net's ``.npz`` key and layout within 1e-3 mean absolute
difference per case, argmax agreement >= 99.9 %, the segmentation written on the input's grid.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from segforge_nnunet_fixture import PLAIN, REFERENCE_CASES, RESENC

from segforge.errors import ConfigError
from segforge.interop.nnunet import load_nnunet_checkpoint, to_model_directory
from segforge.interop.nnunet.model_directory import IMPORT_RECORD

MODELS = pytest.mark.parametrize("fixture", [PLAIN, RESENC], ids=["PlainConvUNet", "ResidualEncoderUNet"])


def _require(fixture: Path) -> None:
    if not (fixture / "reference").is_dir():
        pytest.skip(f"{fixture} not made (run scripts/make_nnunet_fixture.py with nnU-Net installed)")


def predict(run_main, model: Path, images: Path, out: Path) -> None:
    code, _, err = run_main(
        [
            "predict",
            "-m",
            str(model),
            "-i",
            str(images),
            "-o",
            str(out),
            "-f",
            "0",
            "--checkpoint",
            "final",
            "--save-probabilities",
            "--device",
            "cpu",
            "--precision",
            "fp32",
        ]
    )
    assert code == 0, err


def assert_matches(ours: Path, reference: Path) -> list[tuple[float, float]]:
    """Per case (probability mean absolute difference, argmax agreement), asserted against the criteria."""
    found = []
    for case in REFERENCE_CASES:
        with np.load(reference / f"{case}.npz", allow_pickle=False) as f:
            ref = f["probabilities"]
        with np.load(ours / f"{case}.npz", allow_pickle=False) as f:
            got = f["probabilities"]
        assert got.shape == ref.shape  # [classes, z, y, x] of the raw image, as nnU-Net writes it
        mad = float(np.abs(got.astype(np.float32) - ref.astype(np.float32)).mean())
        ref_img, got_img = sitk.ReadImage(reference / f"{case}.nii.gz"), sitk.ReadImage(ours / f"{case}.nii.gz")
        ref_seg, got_seg = sitk.GetArrayFromImage(ref_img), sitk.GetArrayFromImage(got_img)
        agreement = float((ref_seg == got_seg).mean())
        assert mad < 1e-3, (case, mad)
        assert agreement >= 0.999, (case, agreement)
        assert got_img.GetSpacing() == ref_img.GetSpacing() and got_img.GetOrigin() == ref_img.GetOrigin()
        assert np.array_equal(np.argmax(ref, 0), ref_seg)  # the reference itself: labels are the probability argmax
        found.append((mad, agreement))
    return found


@MODELS
def test_predict_from_nnunet_folder_matches_nnunets_stored_predictions(fixture, run_main, reference_inputs, tmp_path):
    """The plain model segments the hippocampus (so the argmax check has boundaries to get wrong); the tiny
    ResEnc one never learnt foreground (probabilities up to ~0.3), so for it the probabilities carry the check."""
    _require(fixture)
    predict(run_main, fixture / "model", reference_inputs, tmp_path / "preds")
    assert_matches(tmp_path / "preds", fixture / "reference")
    for case in REFERENCE_CASES:
        with np.load(fixture / "reference" / f"{case}.npz", allow_pickle=False) as f:
            assert f["probabilities"][1:].std() > 0.05  # far from constant: the mean difference is not vacuous
    foreground = [
        (sitk.GetArrayFromImage(sitk.ReadImage(fixture / "reference" / f"{c}.nii.gz")) > 0).mean()
        for c in REFERENCE_CASES
    ]
    if fixture == PLAIN:
        assert min(foreground) > 0.01, "the plain model predicts (almost) no foreground: the argmax check is empty"


def test_import_nnunet_package_predicts_the_same(run_main, reference_inputs, tmp_path):
    _require(PLAIN)
    package = tmp_path / "hippocampus_nnunet.zip"
    code, out, err = run_main(["import-nnunet", str(PLAIN / "model"), "-o", str(package), "--licence", "CC-BY-SA-4.0"])
    assert code == 0, err
    assert "generic_unet" in err and package.name in out
    with zipfile.ZipFile(package) as archive:
        names = archive.namelist()
    assert not any(n.endswith((".pth", ".pkl")) for n in names)
    assert any(n.endswith("fold_0/checkpoint_final.pt") for n in names)
    predict(run_main, package, reference_inputs, tmp_path / "preds")
    assert_matches(tmp_path / "preds", PLAIN / "reference")


def test_conversion_is_reused_and_written_last(tmp_path):
    _require(PLAIN)
    run_dir = to_model_directory(PLAIN / "model", tmp_path / "conv", folds=["0"], checkpoint="checkpoint_final.pth")
    assert run_dir.name == "nnUNetTrainer__generic_unet__nnUNetPlansTiny"
    checkpoint = run_dir / "fold_0" / "checkpoint_final.pt"
    stamp = checkpoint.stat().st_mtime_ns
    assert (tmp_path / "conv" / IMPORT_RECORD).is_file()
    assert to_model_directory(PLAIN / "model", tmp_path / "conv") == run_dir
    assert checkpoint.stat().st_mtime_ns == stamp  # not rewritten


def test_missing_fold_and_checkpoint_are_one_line_errors(run_main, tmp_path):
    _require(PLAIN)
    images = tmp_path / "in"
    images.mkdir()
    for args, expected in (
        (["-f", "3"], "fold_3 not found"),
        (["--checkpoint", "best"], "checkpoint_best.pth not found"),
    ):
        code, _, err = run_main(
            [
                "predict",
                "-m",
                str(PLAIN / "model"),
                "-i",
                str(images),
                "-o",
                str(tmp_path / "o"),
                "--device",
                "cpu",
                *args,
            ]
        )
        assert code == 2 and expected in err and "fold_0" in err and "Traceback" not in err, err


@pytest.mark.slow
@MODELS
def test_live_nnunet_agrees(fixture, run_main, reference_inputs, tmp_path):
    """nnUNetv2_predict_from_modelfolder run now (needs nnunetv2; run with the nnU-Net venv's python)."""
    pytest.importorskip("nnunetv2")
    _require(fixture)
    env = {
        **os.environ,
        "nnUNet_raw": str(tmp_path),
        "nnUNet_preprocessed": str(tmp_path),
        "nnUNet_results": str(tmp_path),
    }
    code = "from nnunetv2.inference.predict_from_raw_data import predict_entry_point_modelfolder as m; m()"
    subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "-i",
            str(reference_inputs),
            "-o",
            str(tmp_path / "nnunet"),
            "-m",
            str(fixture / "model"),
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
        env=env,
        check=True,
        capture_output=True,
    )
    predict(run_main, fixture / "model", reference_inputs, tmp_path / "segforge")
    assert_matches(tmp_path / "segforge", tmp_path / "nnunet")


def test_python_api_predicts_an_nnunet_folder(hippocampus_msd, tmp_path):
    """``Predictor.from_nnunet`` (segforge.api) goes through the same conversion: nnU-Net's labels, case by case."""
    _require(PLAIN)
    from segforge.api import Predictor

    predictor = Predictor.from_nnunet(PLAIN / "model", folds=[0], device="cpu", precision="fp32")
    case = REFERENCE_CASES[0]
    seg = predictor.predict_image(hippocampus_msd / "imagesTr" / f"{case}.nii.gz")
    ref = sitk.GetArrayFromImage(sitk.ReadImage(PLAIN / "reference" / f"{case}.nii.gz"))
    assert (sitk.GetArrayFromImage(seg) == ref).mean() >= 0.999


def test_import_nnunet_refuses_other_folders_and_outputs(run_main, tmp_path):
    code, _, err = run_main(["import-nnunet", str(tmp_path), "-o", str(tmp_path / "m.zip")])
    assert code == 2 and "is not an nnU-Net v2 model folder" in err and "Traceback" not in err
    code, _, err = run_main(["import-nnunet", str(PLAIN / "model"), "-o", str(tmp_path / "m.tar")])
    assert code == 2 and "a model package is a .zip file" in err
    assert not (tmp_path / "m.zip").exists() and not (tmp_path / "m.tar").exists()


def test_several_folds_are_converted_and_must_share_one_configuration(run_main, reference_inputs, tmp_path):
    """Two folds (here the same weights twice, so the ensemble must equal the single model) and a fold
    trained as another configuration, which is refused before anything is written."""
    _require(PLAIN)
    model = tmp_path / "model"
    shutil.copytree(PLAIN / "model", model)
    shutil.copytree(model / "fold_0", model / "fold_1")
    run_dir = to_model_directory(model, tmp_path / "conv")
    assert sorted(p.name for p in run_dir.glob("fold_*")) == ["fold_0", "fold_1"]
    code, _, err = run_main(["predict", "-m", str(model), "-i", str(reference_inputs), "-o", str(tmp_path / "preds"),
                             "--save-probabilities", "--device", "cpu", "--precision", "fp32"])  # fmt: skip
    assert code == 0 and "2 fold(s)" in err, err
    assert_matches(tmp_path / "preds", PLAIN / "reference")
    payload = load_nnunet_checkpoint(model / "fold_1" / "checkpoint_final.pth")
    payload["init_args"]["configuration"] = "2d"
    torch.save(payload, model / "fold_1" / "checkpoint_final.pth")
    with pytest.raises(ConfigError, match="fold_1/checkpoint_final.pth was trained as 2d"):
        to_model_directory(model, tmp_path / "conv2")
    assert not (tmp_path / "conv2").exists()
