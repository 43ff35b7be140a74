"""Plans and preprocessed arrays equal nnU-Net v2's on the real datasets as imported by ``import-dataset``.

BraTS (2 z-scored channels with the brain mask applied, regions), TotalSegmentator's CT (ct
normalization from foreground percentiles) and the anisotropic NRRD cases (separate-z resampling,
checked at a finer target spacing because the planned one equals the source's). nnU-Net runs on the
*same* imported folders (a ``DatasetNNN_Name`` symlink to segforge's ``TaskNNN_Name``):
``nnUNetv2_extract_fingerprint`` + ``nnUNetv2_plan_experiment`` in a subprocess, its
``DefaultPreprocessor.run_case`` in-process. Skipped unless nnunetv2 is importable: run with
``/work/nnunet-venv/bin/python -m pytest -m "slow or not slow" tests/realdata/test_realdata_nnunet_parity.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from segforge.config.plans import Plans
from segforge.io.dataset_import import CaseFiles, import_dataset
from segforge.preprocessing.preprocessor import CasePreprocessor

pytest.importorskip("nnunetv2")
from nnunetv2.preprocessing.preprocessors.default_preprocessor import DefaultPreprocessor  # noqa: E402
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager  # noqa: E402

pytestmark = pytest.mark.slow
#: largest |segforge - nnU-Net| of a normalized intensity (float32 vs float64 resampling; 0 without)
DATA_ATOL = 1e-4
SCHEMES = {"ZScoreNormalization": "zscore", "CTNormalization": "ct"}
BRATS_REGIONS = {"whole tumour": [1, 2, 3, 4], "tumour core": [1, 3, 4], "enhancing tumour": [4]}


def _both_plans(raw: Path, tmp: Path, run_main) -> tuple[Plans, dict]:
    """segforge's plans (``segforge plan``) and nnU-Net's (``nnUNetv2_plan_experiment``) of one raw dataset."""
    task_id, name = int(raw.name[4:7]), raw.name.split("_", 1)[1]
    code, _, err = run_main(["plan", "--task", str(task_id), "-np", "1"])
    assert code == 0, err
    ours = Plans.model_validate_json((tmp / "pre" / raw.name / "segforgePlans.json").read_text())
    (tmp / "nnraw").mkdir()
    (tmp / "nnraw" / f"Dataset{task_id:03d}_{name}").symlink_to(raw)
    env = {**os.environ, "nnUNet_raw": str(tmp / "nnraw"), "nnUNet_preprocessed": str(tmp / "nnpre"),
           "nnUNet_results": str(tmp / "nnres"), "OMP_NUM_THREADS": "1"}  # fmt: skip
    bin_dir = Path(sys.executable).parent
    for tool in (["nnUNetv2_extract_fingerprint", "-np", "1", "--no_pbar"], ["nnUNetv2_plan_experiment"]):
        proc = subprocess.run([str(bin_dir / tool[0]), "-d", str(task_id), *tool[1:]], env=env, capture_output=True,
                              text=True, timeout=900)  # fmt: skip
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    theirs = json.loads((tmp / "nnpre" / f"Dataset{task_id:03d}_{name}" / "nnUNetPlans.json").read_text())
    return ours, theirs


def _compare_plans(ours: Plans, theirs: dict) -> None:
    assert ours.transpose_forward == theirs["transpose_forward"]
    for key, stats in theirs["foreground_intensity_properties_per_channel"].items():
        mine = ours.foreground_intensity_properties_per_channel[key].model_dump()
        for stat, value in stats.items():
            assert mine[stat] == pytest.approx(value, rel=1e-5, abs=1e-6), (key, stat)
    for name in ("2d", "3d_fullres"):
        conf, want = ours.configurations[name], theirs["configurations"][name]
        arch = want["architecture"]["arch_kwargs"]
        assert conf.spacing == pytest.approx(want["spacing"])
        assert (conf.patch_size, conf.batch_size) == (want["patch_size"], want["batch_size"]), name
        assert conf.normalization == [SCHEMES[s] for s in want["normalization_schemes"]]
        assert conf.use_mask_for_norm == want["use_mask_for_norm"]
        assert conf.network.params["strides"] == arch["strides"]
        assert conf.network.params["features_per_stage"] == arch["features_per_stage"]
        assert conf.network.params["kernel_sizes"] == arch["kernel_sizes"]
    assert ("3d_lowres" in ours.configurations) == ("3d_lowres" in theirs["configurations"])


def _compare_case(ours: Plans, theirs: dict, raw: Path, case: str, conf: str = "3d_fullres") -> tuple[float, tuple]:
    dj = json.loads((raw / "dataset.json").read_text())
    ending = dj["file_ending"]
    images = sorted(str(p) for p in (raw / "imagesTr").glob(f"{case}_0*{ending}"))
    label = str(raw / "labelsTr" / f"{case}{ending}")
    mine = CasePreprocessor(ours, [conf]).run_files(images, label, case)[ours.configurations[conf].data_identifier]
    manager = PlansManager(theirs)
    data, seg, props = DefaultPreprocessor(verbose=False).run_case(
        images, label, manager, manager.get_configuration(conf), dj
    )
    assert mine.data.shape == data.shape and mine.seg.shape == seg.shape
    assert mine.props.bbox == [tuple(b) for b in props["bbox_used_for_cropping"]]
    diff = float(np.abs(mine.data - data).max())
    assert diff <= DATA_ATOL, f"{case}: max |data diff| {diff}"
    assert int((mine.seg != seg).sum()) == 0, f"{case}: segmentation differs"
    return diff, data.shape


def _folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var, sub in (("RAW", "raw"), ("PREPROCESSED", "pre"), ("RESULTS", "results")):
        monkeypatch.setenv(f"SEGFORGE_{var}", str(tmp_path / sub))


def test_brats_two_channels_with_brain_mask(brats_root: Path, tmp_path: Path, monkeypatch, run_main) -> None:
    _folders(tmp_path, monkeypatch)
    cases = []
    for folder in sorted(p for split in ("train", "validation") for p in (brats_root / split).iterdir()):
        channels = {"FLAIR": folder / "Flair_subtrMeanDivStd.nii.gz", "T1c": folder / "T1c_subtrMeanDivStd.nii.gz"}
        cases.append(CaseFiles(folder.name, channels, folder / "OTMultiClass.nii.gz", folder / "brainmask.nii.gz"))
    import_dataset(cases, "Task601_BraTS", regions=BRATS_REGIONS, mode="link", raw_root=tmp_path / "raw")
    raw = tmp_path / "raw" / "Task601_BraTS"
    ours, theirs = _both_plans(raw, tmp_path, run_main)
    _compare_plans(ours, theirs)
    assert ours.configurations["3d_fullres"].use_mask_for_norm == [True, True]  # the brain crop is < 3/4
    for case in [c.case_id for c in cases][:2]:
        print(case, "max |diff|", _compare_case(ours, theirs, raw, case))


def test_ct_example(totalseg_root: Path, tmp_path: Path, monkeypatch, run_main) -> None:
    _folders(tmp_path, monkeypatch)
    case = CaseFiles("example_ct", {"CT": totalseg_root / "example_ct_sm.nii.gz"}, totalseg_root / "example_seg.nii.gz")
    labels = {"spleen": 1, "kidney_right": 2, "kidney_left": 3, "liver": 4}
    import_dataset([case], "Task602_CT", labels=labels, label_map={1: 1, 2: 2, 3: 3, 5: 4, "*": 0},
                   raw_root=tmp_path / "raw")  # fmt: skip
    raw = tmp_path / "raw" / "Task602_CT"
    ours, theirs = _both_plans(raw, tmp_path, run_main)
    _compare_plans(ours, theirs)
    assert ours.configurations["3d_fullres"].normalization == ["ct"]
    print("CT max |diff|", _compare_case(ours, theirs, raw, "example_ct"))


def test_anisotropic_nrrd(pyradiomics_root: Path, tmp_path: Path, monkeypatch, run_main) -> None:
    _folders(tmp_path, monkeypatch)
    cases = [CaseFiles(f"brain{i}", {"T1c": pyradiomics_root / f"brain{i}_image.nrrd"},
                       pyradiomics_root / f"brain{i}_label.nrrd") for i in (1, 2)]  # fmt: skip
    import_dataset(cases, "Task603_NRRD", labels={"tumour": 1}, mode="link", raw_root=tmp_path / "raw")
    raw = tmp_path / "raw" / "Task603_NRRD"
    ours, theirs = _both_plans(raw, tmp_path, run_main)
    _compare_plans(ours, theirs)
    for case in ("brain1", "brain2"):
        print(case, "3d_fullres max |diff|", _compare_case(ours, theirs, raw, case))
        print(case, "2d max |diff|", _compare_case(ours, theirs, raw, case, "2d"))
    # the planned spacing equals the source's: resample to 3.25 mm slices in both to exercise separate z
    ours.configurations["3d_fullres"].spacing = [3.25, 0.78125, 0.78125]
    theirs["configurations"]["3d_fullres"]["spacing"] = [3.25, 0.78125, 0.78125]
    diff, shape = _compare_case(ours, theirs, raw, "brain1")
    assert shape[1] == 2 * 25  # 25 slices of 6.5 mm -> 50 of 3.25 mm
    print("brain1 at 3.25 mm max |diff|", diff)
