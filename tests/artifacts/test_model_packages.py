"""export-model -> predict -m FILE / install-model, on a model trained here: same voxels, same files."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from segforge_tiny_task import DATASET, TASK  # on sys.path through conftest.py

RUN = f"{DATASET}/3d_fullres/default__generic_unet__segforgePlans"


def read(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


@pytest.fixture
def exported(run_main, tiny_env: Path, tmp_path: Path) -> Path:
    out = tmp_path / "tiny.zip"
    code, stdout, stderr = run_main(["export-model", "--task", TASK, "--folds", "0", "-o", str(out),
                                     "--licence", "CC-BY-4.0", "--author", "A. Tester"])  # fmt: skip
    assert code == 0, stderr
    assert str(out) in stdout and "needs no plugins" in stderr
    return out


def test_package_holds_what_prediction_needs_and_no_training_state(exported: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(exported) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("segforge-package.json"))
        card = json.loads(archive.read("model-card.json"))
        archive.extract(f"{RUN}/fold_0/checkpoint_final.pt", tmp_path)
    assert {f"{RUN}/plans.json", f"{RUN}/dataset.json", f"{RUN}/fold_0/checkpoint_final.pt",
            f"{RUN}/fold_0/manifest.json", "model-card.json"} <= names  # fmt: skip
    assert set(manifest["files"]) == names - {"segforge-package.json"}
    assert manifest["folds"] == ["0"] and manifest["checkpoint"] == "final" and manifest["requirements"] == []
    assert card["licence"] == "CC-BY-4.0" and card["authors"] == ["A. Tester"] and card["dataset"] == DATASET
    assert card["labels"]["background"] == 0 and sorted(card["labels"].values()) == [0, 1, 2]
    assert card["validation"][0]["fold"] == "0" and card["validation"][0]["num_cases"] > 0
    assert card["train_cases"] is not None
    from segforge.artifacts.checkpoint import load_checkpoint

    payload = load_checkpoint(tmp_path / RUN / "fold_0" / "checkpoint_final.pt")
    assert payload["optimizer_state"] == {} and payload["rng"] == {}
    assert payload["network_weights"]


def test_predict_from_package_matches_the_trained_run_voxel_for_voxel(run_main, exported, tiny_env, tmp_path):
    images = tiny_env / "raw" / DATASET / "imagesTr"
    code, _, err = run_main(["predict", "-i", str(images), "-o", str(tmp_path / "run"), "--task", TASK, "-f", "0",
                             "--sequential"])  # fmt: skip
    assert code == 0, err
    code, _, err = run_main(["predict", "-m", str(exported), "-i", str(images), "-o", str(tmp_path / "pkg"),
                             "--sequential"])  # fmt: skip
    assert code == 0, err
    outputs = sorted(p.name for p in (tmp_path / "run").glob("*.nii.gz"))
    assert outputs and outputs == sorted(p.name for p in (tmp_path / "pkg").glob("*.nii.gz"))
    for name in outputs:
        np.testing.assert_array_equal(read(tmp_path / "run" / name), read(tmp_path / "pkg" / name))
    unpacked = list((tmp_path / "cache" / "models").iterdir())
    assert len(unpacked) == 1 and (unpacked[0] / RUN / "fold_0" / "checkpoint_final.pt").is_file()


def test_install_model_makes_predict_by_task_work_in_another_results_folder(run_main, exported, tiny_env, tmp_path,
                                                                            monkeypatch):  # fmt: skip
    monkeypatch.setenv("SEGFORGE_RESULTS", str(tmp_path / "elsewhere"))
    code, out, err = run_main(["install-model", str(exported)])
    assert code == 0, err
    assert (tmp_path / "elsewhere" / RUN / "fold_0" / "checkpoint_final.pt").is_file()
    assert (tmp_path / "elsewhere" / RUN / "model-card.json").is_file()
    images = tiny_env / "raw" / DATASET / "imagesTr"
    code, _, err = run_main(["predict", "-i", str(images), "-o", str(tmp_path / "p"), "--task", TASK, "--sequential"])
    assert code == 0, err
    assert len(list((tmp_path / "p").glob("*.nii.gz"))) == 6
    code, _, err = run_main(["install-model", str(exported)])
    assert code == 2 and "already exists" in err and "--overwrite" in err
    code, _, err = run_main(["install-model", str(exported), "--overwrite"])
    assert code == 0, err
    # an installed model exports again with no raw or preprocessed data: it carries its dataset.json
    monkeypatch.setenv("SEGFORGE_RAW", str(tmp_path / "no_raw"))
    monkeypatch.setenv("SEGFORGE_PREPROCESSED", str(tmp_path / "no_pre"))
    code, _, err = run_main(["export-model", "--task", TASK, "-o", str(tmp_path / "again.zip")])
    assert code == 0, err
    with zipfile.ZipFile(tmp_path / "again.zip") as again, zipfile.ZipFile(exported) as first:
        assert again.read(f"{RUN}/dataset.json") == first.read(f"{RUN}/dataset.json")
        card = json.loads(again.read("model-card.json"))
    assert (
        card["validation"] == []
        and "1 of 1 exported fold(s) have no validation/summary.json" in card["validation_note"]
    )


def test_export_names_a_missing_fold(run_main, tiny_env, tmp_path):
    code, _, err = run_main(["export-model", "--task", TASK, "--folds", "3", "-o", str(tmp_path / "x.zip")])
    assert code == 2 and "fold_3 not found" in err
    assert not (tmp_path / "x.zip").exists()
