"""BraTS 2015 sample as shipped: two channels, brain-mask cropping, the three BraTS regions, evaluation per region.

The shipped images are z-scored inside the brain, so their background is a constant *nonzero* value
(about -3.5 in every channel): nnU-Net's crop to the nonzero region would keep the whole
240x240x155 volume. ``import-dataset --mask`` writes the channels with 0 outside brainmask.nii.gz,
which makes the nonzero region exactly the brain (the mask has no holes and the images no zeros
inside it), so cropping and ``use_mask_for_norm`` behave as on nnU-Net's own BraTS data.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from realdata_helpers import crop_file

from segforge.io.dataset_import import CaseFiles, import_dataset
from segforge.preprocessing.cropping import bounding_box, nonzero_mask

CASES = {"train": ["brats_2013_pat0005_1"], "validation": ["brats_2013_pat0003_1"], "test": ["brats_2013_pat0001_1"]}
FILES = ("Flair_subtrMeanDivStd.nii.gz", "T1c_subtrMeanDivStd.nii.gz", "OTMultiClass.nii.gz", "brainmask.nii.gz")
#: the documented command (docs/your-data.md), SRC and the output name filled in
IMPORT = [
    "import-dataset", "{src}", "--name", "Task501_BraTS",
    "--channel", "FLAIR={split}/{case}/Flair_subtrMeanDivStd.nii.gz",
    "--channel", "T1c={split}/{case}/T1c_subtrMeanDivStd.nii.gz",
    "--labels", "{split}/{case}/OTMultiClass.nii.gz",
    "--mask", "{split}/{case}/brainmask.nii.gz",
    "--region", "whole tumour=1,2,3,4", "--region", "tumour core=1,3,4", "--region", "enhancing tumour=4",
    "--test", "split=test", "--link",
]  # fmt: skip
REGIONS = {"whole tumour": [1, 2, 3, 4], "tumour core": [1, 3, 4], "enhancing tumour": [4]}
TRAIN = ["--epochs", "1", "--iterations-per-epoch", "2", "--set", "val_iterations=1", "--set", "threads=1"]


def _array(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def _import(run_main, src: Path) -> None:
    code, out, err = run_main([a.replace("{src}", str(src)) for a in IMPORT] + ["-np", "1"])
    assert code == 0, err
    assert "imported 2 training and 1 test case(s)" in out


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("raw", "pre", "results"):
        monkeypatch.setenv(f"SEGFORGE_{'PREPROCESSED' if name == 'pre' else name.upper()}", str(tmp_path / name))
    return tmp_path


def test_brain_mask_makes_the_nonzero_crop_the_brain(brats_root: Path, folders: Path) -> None:
    """On a full shipped case: without the mask nothing is cropped; with it the crop is the brain's box."""
    case = brats_root / "test" / "brats_2013_pat0001_1"
    flair, t1c, mask = (_array(case / f) for f in (FILES[0], FILES[1], FILES[3]))
    assert flair[0, 0, 0] != 0 and t1c[0, 0, 0] != 0  # the shipped background is not 0
    assert bounding_box(nonzero_mask(np.stack([flair, t1c]))) == [(0, s) for s in flair.shape]
    channels = {"FLAIR": case / FILES[0], "T1c": case / FILES[1]}
    one = CaseFiles("pat0001", channels, label=case / FILES[2], mask=case / FILES[3])  # the Python API, one case
    import_dataset([one], "Task501_BraTS", regions=REGIONS, mode="link", raw_root=folders / "raw", num_processes=1)
    raw = folders / "raw" / "Task501_BraTS"
    assert (raw / "labelsTr" / "pat0001.nii.gz").is_symlink()
    imported = np.stack([_array(raw / "imagesTr" / f"pat0001_000{c}.nii.gz") for c in (0, 1)])
    brain = mask > 0
    np.testing.assert_array_equal(nonzero_mask(imported), brain)
    assert bounding_box(nonzero_mask(imported)) == bounding_box(brain)
    np.testing.assert_array_equal(imported[0][brain], flair[brain])  # values inside the brain kept as shipped


def _subset(brats_root: Path, dst: Path, crop: tuple[int, int, int]) -> Path:
    """The shipped layout for CASES, cropped to ``crop`` voxels (x, y, z) around the tumour."""
    for split, cases in CASES.items():
        for case in cases:
            folder = brats_root / split / case
            label = _array(folder / FILES[2])
            centre = np.argwhere(label > 0).mean(axis=0)[::-1]  # x, y, z
            start = [
                int(np.clip(c - s // 2, 0, n - s)) for c, s, n in zip(centre, crop, label.shape[::-1], strict=True)
            ]
            for f in FILES:
                crop_file(folder / f, dst / split / case / f, start, crop)
    return dst


def test_brats_crops_from_shipped_files_to_region_scores(brats_root: Path, folders: Path, run_main) -> None:
    """import-dataset -> plan-and-preprocess -> train -> predict -> evaluate per region, on crops around the tumour."""
    _import(run_main, _subset(brats_root, folders / "src", crop=(32, 32, 24)))
    raw = folders / "raw" / "Task501_BraTS"
    code, out, err = run_main(["plan-and-preprocess", "--task", "501", "-c", "3d_fullres", "-np", "1"])
    assert code == 0, err
    plans = json.loads((folders / "pre" / "Task501_BraTS" / "segforgePlans.json").read_text())
    assert plans["regions"] == [[1, 2, 3, 4], [1, 3, 4], [4]] and plans["regions_class_order"] == [2, 1, 4]
    assert plans["configurations"]["3d_fullres"]["normalization"] == ["zscore", "zscore"]
    code, out, err = run_main(["train", "--task", "501", "--fold", "all", "--device", "cpu", *TRAIN])
    assert code == 0, err
    pred = folders / "pred"
    code, out, err = run_main(["predict", "-i", str(raw / "imagesTs"), "-o", str(pred), "--task", "501",
                               "--folds", "all", "--no-tta", "--device", "cpu"])  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in pred.glob("*.nii.gz")) == ["brats_2013_pat0001_1.nii.gz"]
    assert set(np.unique(_array(pred / "brats_2013_pat0001_1.nii.gz"))) <= {0, 1, 2, 4}
    code, out, err = run_main(["evaluate", "--ref", str(raw / "labelsTs"), "--pred", str(pred),
                               "--dataset-json", str(raw / "dataset.json"), "-np", "1"])  # fmt: skip
    assert code == 0, err
    summary = json.loads((pred / "summary.json").read_text())
    print(json.dumps(summary["mean"], indent=1))
    assert sorted(summary["mean"]) == ["1", "2", "4"]  # tumour core, whole tumour, enhancing (regions_class_order)
    assert summary["regions"] == {"2": [1, 2, 3, 4], "1": [1, 3, 4], "4": [4]}
    for scores in summary["mean"].values():
        assert 0.0 <= scores["dice"] <= 1.0
