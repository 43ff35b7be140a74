"""Datasets whose files may hold several channels (RGB PNG): which files a case has, in training and prediction."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segforge.errors import UsageError
from segforge.inference.predictor import list_jobs
from segforge.io.layouts import files_per_case, open_raw_dataset, packs_channels


def _png(path: Path, rgb: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((6, 5, 3) if rgb else (6, 5), 9, np.uint8)).save(path)


def test_which_components_pack_channels() -> None:
    assert packs_channels(".png") and packs_channels(".tif")
    assert not packs_channels(".nii.gz") and not packs_channels(".unknown")
    assert files_per_case({0: Path("a")}, 3, packed=True) == 1
    assert files_per_case({0: Path("a"), 2: Path("c")}, 4, packed=True) == 3  # _0001 is missing
    assert files_per_case({0: Path("a"), 5: Path("f")}, 3, packed=True) == 3  # never more files than channels
    assert files_per_case({0: Path("a")}, 3, packed=False) == 3


def test_rgb_plus_gray_case_lists_its_two_files_and_a_gap_is_missing(tmp_path: Path) -> None:
    task = tmp_path / "Dataset007_Mixed"
    _png(task / "imagesTr" / "a_0000.png")
    _png(task / "imagesTr" / "a_0001.png", rgb=False)
    _png(task / "imagesTr" / "b_0000.png")
    _png(task / "imagesTr" / "b_0002.png", rgb=False)
    (task / "labelsTr").mkdir()
    for case in ("a", "b"):
        Image.fromarray(np.zeros((6, 5), np.uint8)).save(task / "labelsTr" / f"{case}.png")
    info = {"channel_names": {"0": "R", "1": "G", "2": "B", "3": "NIR"}, "labels": {"background": 0, "x": 1},
            "numTraining": 2, "file_ending": ".png"}  # fmt: skip
    (task / "dataset.json").write_text(json.dumps(info))
    ds = open_raw_dataset(task)
    assert [[p.name for p in c.images] for c in ds.cases] == [
        ["a_0000.png", "a_0001.png"],
        ["b_0000.png", "b_0001.png", "b_0002.png"],
    ]
    from segforge.io.verify import verify_dataset

    lines = [p.line() for p in verify_dataset(ds, num_processes=1).errors]
    assert "imagesTr/b_0001.png: missing channel 1 of case 'b'" in lines
    assert not any(line.startswith("imagesTr/a_") for line in lines)  # 3 + 1 channels: as declared


def test_prediction_jobs_take_the_files_a_case_has_and_jpeg_gives_png(tmp_path: Path) -> None:
    _png(tmp_path / "in" / "c_0000.png")
    jobs, _ = list_jobs(tmp_path / "in", tmp_path / "out", (".png", ".jpg"), 3)
    assert [(j.case_id, [p.name for p in j.images], j.output.name) for j in jobs] == [("c", ["c_0000.png"], "c.png")]
    (tmp_path / "jpg").mkdir()
    Image.fromarray(np.full((6, 5, 3), 9, np.uint8)).save(tmp_path / "jpg" / "d_0000.jpg")
    jobs, _ = list_jobs(tmp_path / "jpg", tmp_path / "out", (".png", ".jpg"), 3)
    assert [j.output.name for j in jobs] == ["d.png"]
    _png(tmp_path / "in" / "c_0002.png", rgb=False)  # a gap: _0001 missing
    with pytest.raises(UsageError, match=r"case 'c' .* is missing channel 1: c_0001\.png"):
        list_jobs(tmp_path / "in", tmp_path / "out", (".png",), 3)
    for channel in (1, 3):
        _png(tmp_path / "in" / f"c_000{channel}.png", rgb=False)
    with pytest.raises(UsageError, match=r"has channel file c_0003\.png but the model expects 3 channel\(s\)"):
        list_jobs(tmp_path / "in", tmp_path / "out", (".png",), 3)
