"""pyradiomics' brain MRI as shipped (NRRD, 0.78 x 0.78 x 6.5 mm, anisotropy 8.3): separate-z resampling.

nnU-Net resamples strongly anisotropic images in plane first (cubic, slice by slice) and then along
the thick axis with order 0, so thick slices are not blurred into each other; the rule triggers when
max/min spacing exceeds 3. Here the real NRRD cases go through the same planner and preprocessor.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from realdata_helpers import crop_file

from segforge.config.plans import Plans
from segforge.preprocessing.preprocessor import CasePreprocessor
from segforge.preprocessing.resampling import separate_z_axis

#: the documented command (docs/your-data.md): case ids brain1, brain2; brain2 held out as test case
IMPORT = [
    "import-dataset", "{src}", "--name", "Task503_BrainNRRD", "--channel", "T1c={case}_image.nrrd",
    "--labels", "{case}_label.nrrd", "--label-name", "tumour=1", "--test", "case=brain2", "--link",
]  # fmt: skip
TRAIN = ["--epochs", "1", "--iterations-per-epoch", "2", "--set", "val_iterations=1", "--set", "threads=1"]


@pytest.fixture
def imported(pyradiomics_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_main) -> Path:
    for var, sub in (("RAW", "raw"), ("PREPROCESSED", "pre"), ("RESULTS", "results")):
        monkeypatch.setenv(f"SEGFORGE_{var}", str(tmp_path / sub))
    code, out, err = run_main([a.replace("{src}", str(pyradiomics_root)) for a in IMPORT] + ["-np", "1"])
    assert code == 0, err
    assert "imported 1 training and 1 test case(s)" in out
    return tmp_path


def test_nrrd_is_kept_and_anisotropic_cases_resample_separately_along_z(
    imported: Path, pyradiomics_root: Path, run_main
) -> None:
    raw = imported / "raw/Task503_BrainNRRD"
    assert json.loads((raw / "dataset.json").read_text())["file_ending"] == ".nrrd"
    assert (raw / "imagesTr/brain1_0000.nrrd").is_symlink() and (raw / "labelsTs/brain2.nrrd").is_symlink()
    code, out, err = run_main(["plan", "--task", "503", "-np", "1"])
    assert code == 0, err
    plans = Plans.model_validate_json((imported / "pre/Task503_BrainNRRD/segforgePlans.json").read_text())
    conf = plans.configurations["3d_fullres"]
    assert conf.spacing == pytest.approx([6.5, 0.78125, 0.78125])
    source = [6.5, 0.78125, 0.78125]
    assert separate_z_axis(source, conf.spacing, None, conf.resampling.anisotropy_threshold) == 0
    # to 3.25 mm slices: in plane unchanged, along z order 0 -> every output slice is one input slice
    # (on an in-plane crop around the tumour, all 25 slices: the same anisotropy, a seventh of the work)
    crop = _cropped(pyradiomics_root, imported / "crop")
    files = ([crop / "brain1_image.nrrd"], crop / "brain1_label.nrrd", "brain1")
    finer = plans.model_copy(deep=True)
    finer.configurations["3d_fullres"].spacing = [3.25, 0.78125, 0.78125]
    out_case = CasePreprocessor(finer, ["3d_fullres"]).run_files(*files)["segforgePlans_3d_fullres"]
    same = CasePreprocessor(plans, ["3d_fullres"]).run_files(*files)["segforgePlans_3d_fullres"]
    n_in = same.data.shape[1]
    assert out_case.data.shape == (1, 2 * n_in, *same.data.shape[2:])
    for k in range(out_case.data.shape[1]):
        z = min(int((k + 0.5) * n_in / (2 * n_in)), n_in - 1)
        np.testing.assert_allclose(out_case.data[0, k], same.data[0, z], atol=2e-4)
    assert set(np.unique(out_case.seg)) <= {-1, 0, 1} and (out_case.seg == 1).sum() == 2 * (same.seg == 1).sum() > 0


def _cropped(root: Path, dst: Path, size: int = 96) -> Path:
    """Both cases with the shipped names, cropped in plane around the tumour (all slices, 6.5 mm kept)."""
    import SimpleITK as sitk

    for n in (1, 2):
        label = sitk.GetArrayFromImage(sitk.ReadImage(str(root / f"brain{n}_label.nrrd")))
        _, y, x = np.argwhere(label > 0).mean(axis=0)
        start = [
            int(np.clip(x - size // 2, 0, label.shape[2] - size)),
            int(np.clip(y - size // 2, 0, label.shape[1] - size)),
            0,
        ]
        for kind in ("image", "label"):
            crop_file(
                root / f"brain{n}_{kind}.nrrd", dst / f"brain{n}_{kind}.nrrd", start, (size, size, label.shape[0])
            )
    return dst


@pytest.mark.slow
def test_nrrd_from_shipped_files_to_evaluated_prediction(
    pyradiomics_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_main
) -> None:
    """The documented commands on in-plane crops (training a 3D network on 256x256 slices is minutes on a CPU)."""
    for var, sub in (("RAW", "raw"), ("PREPROCESSED", "pre"), ("RESULTS", "results")):
        monkeypatch.setenv(f"SEGFORGE_{var}", str(tmp_path / sub))
    src = _cropped(pyradiomics_root, tmp_path / "pyradiomics_brain")
    code, out, err = run_main([a.replace("{src}", str(src)) for a in IMPORT] + ["-np", "1"])
    assert code == 0, err
    raw = tmp_path / "raw/Task503_BrainNRRD"
    code, out, err = run_main(["plan-and-preprocess", "--task", "503", "-c", "3d_fullres", "-np", "1"])
    assert code == 0, err
    code, out, err = run_main(["train", "--task", "503", "--fold", "all", "--device", "cpu", *TRAIN])
    assert code == 0, err
    pred = tmp_path / "pred"
    code, out, err = run_main(["predict", "-i", str(raw / "imagesTs"), "-o", str(pred), "--task", "503",
                               "--folds", "all", "--no-tta", "--device", "cpu"])  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in pred.glob("*.nrrd")) == ["brain2.nrrd"]
    code, out, err = run_main(["evaluate", "--ref", str(raw / "labelsTs"), "--pred", str(pred),
                               "--dataset-json", str(raw / "dataset.json"), "-np", "1"])  # fmt: skip
    assert code == 0, err
    assert sorted(json.loads((pred / "summary.json").read_text())["mean"]) == ["1"]
