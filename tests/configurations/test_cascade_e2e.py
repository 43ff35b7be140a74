"""The whole configuration matrix on a task large enough for 3d_lowres, through the CLI.

``make_large_task`` planned with a small memory budget gets 2d, 3d_fullres, 3d_lowres and
3d_cascade_fullres. 3d_lowres (fold all: every case predicted for the next stage) and the
cascade (fold 0) train 1 epoch x 2 iterations with a tiny network; the cascade reads the lowres
files (its input channels include them; a missing file stops it with the command that writes
it) and ``predict`` runs the lowres stage first. 2d and 3d_fullres train and predict on it too.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from segforge_tiny_task import shrink_network  # noqa: E402

from segforge.testing.synthetic import LARGE_TASK_GPU_MEMORY_GB, make_large_task  # noqa: E402

DATASET, TASK = "Task901_Large", "901"
FEATURES = [4, 8, 16, 16]
SHORT = ["--epochs", "1", "--iterations-per-epoch", "2", "--set", "val_iterations=1", "--set", "threads=1",
         "--set", "augmentation.p_mirror_per_axis=0"]  # fmt: skip
FAST = [*SHORT, "--set", "run_validation=false"]
RUN_NAME = "default__generic_unet__segforgePlans"


def cli(*args: str) -> tuple[int, str]:
    """Run ``segforge`` in-process; returns (exit code, the error text of a failure)."""
    from segforge import plugins
    from segforge.cli.app import main
    from segforge.errors import SegforgeError

    plugins.reset_manager()
    try:
        main(list(args))
        return 0, ""
    except SystemExit as exc:
        return (exc.code if isinstance(exc.code, int) else 1), ""
    except SegforgeError as exc:  # pragma: no cover - main turns these into exits
        return 2, f"{exc.message} | {exc.hint}"
    finally:
        plugins.reset_manager()


def env_for(root: Path, mp: pytest.MonkeyPatch) -> None:
    for var, sub in (("SEGFORGE_RAW", "raw"), ("SEGFORGE_PREPROCESSED", "pre"), ("SEGFORGE_RESULTS", "results")):
        mp.setenv(var, str(root / sub))


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Planned and preprocessed large task; 3d_lowres trained on fold all (writes next-stage inputs)."""
    root = tmp_path_factory.mktemp("large")
    make_large_task(root / "raw" / DATASET)
    with pytest.MonkeyPatch.context() as mp:
        env_for(root, mp)
        assert cli("plan-and-preprocess", "--task", TASK, "-np", "1",
                   "--gpu-memory-gb", str(LARGE_TASK_GPU_MEMORY_GB))[0] == 0  # fmt: skip
        shrink_network(root / "pre" / DATASET / "segforgePlans.json", FEATURES)
        assert cli("train", "--task", TASK, "--fold", "all", "--config", "3d_lowres", *FAST)[0] == 0
        assert cli("train", "--task", TASK, "--fold", "0", "--config", "3d_cascade_fullres", *SHORT)[0] == 0
    return root


@pytest.fixture
def env(large: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    env_for(large, monkeypatch)
    return large


def next_stage_dir(root: Path) -> Path:
    return root / "results" / DATASET / "3d_lowres" / RUN_NAME / "predicted_next_stage" / "3d_cascade_fullres"


def check_geometry(pred_file: Path, image_file: Path) -> np.ndarray:
    pred, image = sitk.ReadImage(str(pred_file)), sitk.ReadImage(str(image_file))
    assert pred.GetSize() == image.GetSize()
    np.testing.assert_allclose(pred.GetSpacing(), image.GetSpacing())
    np.testing.assert_allclose(pred.GetOrigin(), image.GetOrigin())
    return sitk.GetArrayFromImage(pred)


def test_planner_makes_all_four_configurations_with_linked_stages(env):
    plans = json.loads((env / "pre" / DATASET / "segforgePlans.json").read_text())
    confs = plans["configurations"]
    assert set(confs) == {"2d", "3d_fullres", "3d_lowres", "3d_cascade_fullres"}
    assert confs["3d_lowres"]["next_stage"] == "3d_cascade_fullres"
    assert confs["3d_cascade_fullres"]["previous_stage"] == "3d_lowres"
    assert confs["3d_lowres"]["spacing"][0] > confs["3d_fullres"]["spacing"][0]
    assert len(confs["2d"]["patch_size"]) == 2


def test_lowres_fold_all_writes_every_case_at_the_fullres_geometry(env):
    folder = next_stage_dir(env)
    cases = sorted(p.stem for p in folder.glob("*.npz"))
    assert cases == [f"case_{i:03d}" for i in range(5)]
    for case in cases:
        sidecar = json.loads((folder / f"{case}.json").read_text())
        props = json.loads((env / "pre" / DATASET / "segforgePlans_3d_fullres" / f"{case}.json").read_text())
        with np.load(folder / f"{case}.npz", allow_pickle=False) as archive:
            seg = archive["seg"]
        assert list(seg.shape) == props["shape_after_resampling"] == sidecar["shape"]
        assert seg.dtype == np.uint8 and set(np.unique(seg)) <= {0, 1, 2}
        assert sidecar["fold"] == "all" and sidecar["source_configuration"] == "3d_lowres"


def test_cascade_network_takes_the_lowres_one_hot_as_extra_channels(env):
    from segforge.inference.model_loading import load_model

    run = env / "results" / DATASET / "3d_cascade_fullres" / RUN_NAME / "fold_0"
    model = load_model(run / "checkpoint_final.pt")
    assert model.in_channels == 1 + 2  # image + one channel per foreground label
    lowres = load_model(env / "results" / DATASET / "3d_lowres" / RUN_NAME / "fold_all" / "checkpoint_final.pt")
    assert lowres.in_channels == 1
    # the end-of-training validation fed the validation case's lowres segmentation too
    validated = sorted(p.name for p in (run / "validation").glob("*.nii.gz"))
    assert validated == ["case_000.nii.gz"]


def test_missing_lowres_file_stops_the_cascade_with_the_command_that_writes_it(env, capsys):
    folder = next_stage_dir(env)
    backup = env / "backup.npz"
    shutil.move(folder / "case_002.npz", backup)
    try:
        code, _ = cli("train", "--task", TASK, "--fold", "1", "--config", "3d_cascade_fullres", *FAST)
        err = capsys.readouterr().err
        assert code == 2
        assert "no previous-stage prediction for 1 case(s): case_002" in err
        assert "segforge train --task 901 --config 3d_lowres --fold" in err
        # a finished lowres run writes the missing file again on --continue
        assert cli("train", "--task", TASK, "--fold", "all", "--config", "3d_lowres", "--continue", *FAST)[0] == 0
        assert (folder / "case_002.npz").is_file()
    finally:
        if not (folder / "case_002.npz").is_file():
            shutil.move(backup, folder / "case_002.npz")


def test_cascade_predict_runs_lowres_first_and_uses_its_segmentations(env, tmp_path):
    images = env / "raw" / DATASET / "imagesTs"
    out = tmp_path / "out"
    args = ["predict", "-i", str(images), "--task", TASK, "--config", "3d_cascade_fullres", "-f", "0",
            "--sequential", "--save-probabilities"]  # fmt: skip
    assert cli(*args, "-o", str(out))[0] == 0
    lowres = out / "3d_lowres_predictions" / "case_005.nii.gz"
    check_geometry(lowres, images / "case_005_0000.nii.gz")
    seg = check_geometry(out / "case_005.nii.gz", images / "case_005_0000.nii.gz")
    assert set(np.unique(seg)) <= {0, 1, 2}
    # another lowres segmentation (all foreground label 2) changes the cascade's output probabilities
    other = tmp_path / "other_lowres"
    other.mkdir()
    image = sitk.ReadImage(str(lowres))
    fake = sitk.GetImageFromArray(np.full(sitk.GetArrayFromImage(image).shape, 2, dtype=np.uint8))
    fake.CopyInformation(image)
    sitk.WriteImage(fake, str(other / "case_005.nii.gz"))
    assert cli(*args, "-o", str(tmp_path / "out2"), "--lowres-predictions", str(other))[0] == 0
    with np.load(out / "case_005.npz") as a, np.load(tmp_path / "out2" / "case_005.npz") as b:
        assert not np.allclose(a["probabilities"], b["probabilities"])
    assert not (tmp_path / "out2" / "3d_lowres_predictions").exists()


def test_cascade_predict_with_a_lowres_folder_missing_a_case_fails_naming_it(env, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _ = cli("predict", "-i", str(env / "raw" / DATASET / "imagesTs"), "-o", str(tmp_path / "o"), "--task",
                  TASK, "--config", "3d_cascade_fullres", "-f", "0", "--lowres-predictions", str(empty))  # fmt: skip
    err = capsys.readouterr().err
    assert code != 0
    assert "case_005.nii.gz: no 3d_lowres segmentation for case 'case_005'" in err
    code, _ = cli("predict", "-i", str(env / "raw" / DATASET / "imagesTs"), "-o", str(tmp_path / "o"), "--task",
                  TASK, "--config", "3d_lowres", "--lowres-predictions", str(empty))  # fmt: skip
    assert code == 2
    assert "--lowres-predictions is for a cascade stage, not 3d_lowres" in capsys.readouterr().err


@pytest.mark.parametrize("config", ["2d", "3d_fullres"])
def test_2d_and_fullres_train_and_predict_in_the_input_geometry(env, tmp_path, config):
    assert cli("train", "--task", TASK, "--fold", "0", "--config", config, *FAST)[0] == 0
    images = env / "raw" / DATASET / "imagesTs"
    assert cli("predict", "-i", str(images), "-o", str(tmp_path / config), "--task", TASK, "--config", config,
               "-f", "0", "--sequential")[0] == 0  # fmt: skip
    seg = check_geometry(tmp_path / config / "case_005.nii.gz", images / "case_005_0000.nii.gz")
    assert set(np.unique(seg)) <= {0, 1, 2}


def test_cascade_dataset_stacks_the_lowres_one_hot_and_survives_pickling(env):
    import pickle

    from segforge.data.next_stage import one_hot, read_next_stage
    from segforge.training.cascade import open_training_dataset, previous_stage_folder
    from segforge.training.run_setup import RunRequest, resolve_run

    context = resolve_run(RunRequest(task=TASK, fold=0, configuration="3d_cascade_fullres"))
    assert context.in_channels == 3
    dataset = open_training_dataset(context, context.train_ids)
    case_id = context.train_ids[0]
    data = np.asarray(dataset.load(case_id).data)
    lowres = read_next_stage(previous_stage_folder(context), case_id, data.shape[1:], "")
    np.testing.assert_array_equal(data[1:], one_hot(lowres, [1, 2]))
    clone = pickle.loads(pickle.dumps(dataset))  # what a spawned loader worker receives
    np.testing.assert_array_equal(np.asarray(clone.load(case_id).data), data)
