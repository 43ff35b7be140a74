"""TotalSegmentator's CT example as shipped (single files, HU, organ labels of a model): CT normalization.

The labels are model outputs, used here for IO, the foreground statistics and the pipeline, not as
ground truth. ``--label-map`` keeps four organs (spleen, kidneys, liver) and maps every other class
to 0, so the dataset's labels are consecutive 1..4 as nnU-Net requires.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

#: the documented command (docs/your-data.md)
IMPORT = [
    "import-dataset", "{src}", "--name", "Task502_TotalSegCT", "--case-id", "example_ct",
    "--channel", "CT=example_ct_sm.nii.gz", "--labels", "example_seg.nii.gz",
    "--label-map", "1=1,2=2,3=3,5=4,*=0",
    "--label-name", "spleen=1", "--label-name", "kidney_right=2", "--label-name", "kidney_left=3",
    "--label-name", "liver=4", "--link",
]  # fmt: skip
TRAIN = ["--epochs", "1", "--iterations-per-epoch", "2", "--set", "val_iterations=1", "--set", "threads=1"]


@pytest.fixture
def imported(totalseg_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_main) -> Path:
    monkeypatch.setenv("SEGFORGE_RAW", str(tmp_path / "raw"))
    monkeypatch.setenv("SEGFORGE_PREPROCESSED", str(tmp_path / "pre"))
    monkeypatch.setenv("SEGFORGE_RESULTS", str(tmp_path / "results"))
    code, out, err = run_main([a.replace("{src}", str(totalseg_root)) for a in IMPORT] + ["-np", "1"])
    assert code == 0, err
    code, out, err = run_main(["plan-and-preprocess", "--task", "502", "-c", "3d_fullres", "-np", "1"])
    assert code == 0, err
    return tmp_path


def test_ct_normalization_clips_to_foreground_percentiles(imported: Path, totalseg_root: Path) -> None:
    hu = sitk.GetArrayFromImage(sitk.ReadImage(str(totalseg_root / "example_ct_sm.nii.gz"))).astype(np.float64)
    seg = sitk.GetArrayFromImage(sitk.ReadImage(str(imported / "raw/Task502_TotalSegCT/labelsTr/example_ct.nii.gz")))
    assert sorted(np.unique(seg)) == [0, 1, 2, 3, 4]
    plans = json.loads((imported / "pre/Task502_TotalSegCT/segforgePlans.json").read_text())
    conf = plans["configurations"]["3d_fullres"]
    assert conf["normalization"] == ["ct"] and conf["spacing"] == [3.0, 3.0, 3.0]
    stats = plans["foreground_intensity_properties_per_channel"]["0"]
    foreground = hu[seg > 0]  # organ voxels only: air (-1000 HU) and bone outside the organs do not count
    # nnU-Net draws 10e7 foreground voxels with replacement: percentiles of the draws ~ those of the voxels
    assert stats["percentile_00_5"] == pytest.approx(np.percentile(foreground, 0.5), abs=3)
    assert stats["percentile_99_5"] == pytest.approx(np.percentile(foreground, 99.5), abs=3)
    assert stats["mean"] == pytest.approx(foreground.mean(), abs=1) and stats["std"] == pytest.approx(
        foreground.std(), rel=0.01
    )
    assert stats["percentile_00_5"] > np.percentile(hu, 0.5) + 500  # not the whole image's (air) percentile
    folder = imported / "pre/Task502_TotalSegCT/segforgePlans_3d_fullres"
    data, props = np.load(folder / "example_ct.npy"), json.loads((folder / "example_ct.json").read_text())
    box = tuple(slice(a, b) for a, b in props["bbox"])
    clipped = np.clip(hu[box], stats["percentile_00_5"], stats["percentile_99_5"])
    np.testing.assert_allclose(data[0], (clipped - stats["mean"]) / stats["std"], atol=1e-4)
    assert data[0].max() == pytest.approx((stats["percentile_99_5"] - stats["mean"]) / stats["std"], abs=1e-4)


@pytest.mark.slow
def test_ct_from_shipped_files_to_evaluated_prediction(imported: Path, run_main) -> None:
    """Pipeline check only: the reference is a model's output and the prediction is on the training case."""
    raw = imported / "raw/Task502_TotalSegCT"
    code, out, err = run_main(["train", "--task", "502", "--fold", "all", "--device", "cpu", *TRAIN])
    assert code == 0, err
    pred = imported / "pred"
    code, out, err = run_main(["predict", "-i", str(raw / "imagesTr"), "-o", str(pred), "--task", "502",
                               "--folds", "all", "--no-tta", "--device", "cpu"])  # fmt: skip
    assert code == 0, err
    code, out, err = run_main(
        [
            "evaluate",
            "--ref",
            str(raw / "labelsTr"),
            "--pred",
            str(pred),
            "--dataset-json",
            str(raw / "dataset.json"),
            "-np",
            "1",
        ]
    )
    assert code == 0, err
    summary = json.loads((pred / "summary.json").read_text())
    assert sorted(summary["mean"]) == ["1", "2", "3", "4"]
    written = sitk.ReadImage(str(pred / "example_ct.nii.gz"))
    reference = sitk.ReadImage(str(raw / "labelsTr/example_ct.nii.gz"))
    assert written.GetSize() == reference.GetSize() and written.GetSpacing() == reference.GetSpacing()
