"""Predictor: loaded once, reused; images, arrays and folders agree; bad input is one clear error."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inference"))
from inference_helpers import make_plans, write_checkpoint  # noqa: E402

from segforge.errors import UsageError  # noqa: E402
from segforge.testing.synthetic import make_task  # noqa: E402

RUN = Path("Task099_Test") / "3d_fullres" / "default__generic_unet__segforgePlans"


@pytest.fixture
def model(tmp_path, monkeypatch):
    """A results folder with a one-fold tiny model, and three raw test cases."""
    results = tmp_path / "results"
    monkeypatch.setenv("SEGFORGE_RESULTS", str(results))
    write_checkpoint(results / RUN / "fold_0", make_plans((2.0, 1.0, 1.5)), seed=0)
    task = make_task(tmp_path / "raw" / "Task099_Test", n_cases=0, n_test=3, shape=(12, 16, 14))
    return results / RUN, task / "imagesTs"


def test_from_run_loads_once_and_every_entry_point_gives_the_same_labels(model, tmp_path, monkeypatch):
    import segforge.inference.model_loading as loading
    from segforge import Predictor

    calls = []
    real = loading.load_model
    monkeypatch.setattr(loading, "load_model", lambda path: calls.append(path) or real(path))
    run_dir, images = model
    predictor = Predictor.from_run(task=99, folds=[0], tta=False)
    written = predictor.predict_folder(images, tmp_path / "out")
    assert sorted(p.name for p in written) == ["case_000.nii.gz", "case_001.nii.gz", "case_002.nii.gz"]
    file = images / "case_001_0000.nii.gz"
    from_folder = sitk.ReadImage(str(tmp_path / "out" / "case_001.nii.gz"))
    from_path = predictor.predict_image(file)
    image = sitk.ReadImage(str(file))
    from_image = predictor.predict_image(image)
    from_array = predictor.predict_array(sitk.GetArrayFromImage(image), image.GetSpacing()[::-1])
    expected = sitk.GetArrayFromImage(from_folder)
    for result in (from_path, from_image):
        np.testing.assert_array_equal(sitk.GetArrayFromImage(result), expected)
        assert result.GetSpacing() == image.GetSpacing() and result.GetOrigin() == image.GetOrigin()
    np.testing.assert_array_equal(from_array, expected)
    assert len(calls) == 1  # one fold, loaded once for all five calls
    assert predictor.labels == dict(make_plans((2.0, 1.0, 1.5)).labels)


def test_threads_sharing_a_predictor_take_turns_and_agree(model):
    from segforge import Predictor

    run_dir, images = model
    predictor = Predictor(run_dir, tta=False)
    image = sitk.ReadImage(str(images / "case_000_0000.nii.gz"))
    array, spacing = sitk.GetArrayFromImage(image), image.GetSpacing()[::-1]
    results: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: results.append(predictor.predict_array(array, spacing)))
               for _ in range(3)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_bad_inputs_are_usage_errors_naming_the_fix(model, tmp_path):
    from segforge import Predictor

    run_dir, _ = model
    predictor = Predictor(run_dir, tta=False)
    with pytest.raises(UsageError, match=r"does not fit spacing") as err:
        predictor.predict_array(np.zeros((4, 5, 6, 7, 8)), (1.0, 1.0, 1.0))
    assert "[C, z, y, x]" in err.value.hint
    with pytest.raises(UsageError, match=r"2 channel\(s\) given, the model takes 1"):
        predictor.predict_array(np.zeros((2, 12, 16, 14)), (2.0, 1.0, 1.5))
    with pytest.raises(UsageError, match="is not an nnU-Net v2 model folder"):
        Predictor.from_nnunet(run_dir)
    with pytest.raises(UsageError, match="model package .*missing.zip does not exist"):
        Predictor.from_package(tmp_path / "missing.zip")
    with pytest.raises(UsageError, match="no trained model"):
        Predictor.from_run(task=98)


def test_importing_segforge_does_not_load_the_api_or_torch():
    import subprocess

    code = "import sys, segforge; print('segforge.api' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
