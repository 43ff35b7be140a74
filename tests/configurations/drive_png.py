"""A small nnU-Net v2 raw dataset in PNG made from REAL DRIVE fundus photographs.

DRIVE ships RGB TIFF images and 0/255 GIF vessel masks; nnU-Net's own DRIVE conversion (and a
user following it) writes ``imagesTr/CASE_0000.png`` holding R, G and B in one file,
``labelsTr/CASE.png`` with vessels 1, and ``"file_ending": ".png"``. Here the same, on crops of a
few images so that planning, training and prediction stay fast. Shared by the end-to-end test
and the nnU-Net parity test.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(os.environ.get("SEGFORGE_TEST_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
DRIVE = SHARED_DATA / "DRIVE"
DATASET = "Dataset042_DRIVE"


def drive_folder() -> Path:
    """The DRIVE folder as it is distributed; skips the test when it is absent."""
    if not (DRIVE / "training" / "images").is_dir():
        pytest.skip(f"real DRIVE data not found at {DRIVE} (set SEGFORGE_TEST_DATA)")
    return DRIVE


def _crop(array: np.ndarray, size: int | None, scale: int) -> np.ndarray:
    """A ``size`` x ``size`` window at the centre, every ``scale``-th pixel (``None``: the whole image)."""
    if size is None:
        return array
    h, w = array.shape[:2]
    top, left = (h - size * scale) // 2, (w - size * scale) // 2
    return array[top : top + size * scale : scale, left : left + size * scale : scale]


def drive_pairs(split: str) -> list[tuple[str, Path, Path, Path]]:
    """``(case id, image, vessel mask, field-of-view mask)`` of a DRIVE split, sorted by number."""
    folder = drive_folder() / split
    pairs = []
    for image in sorted((folder / "images").glob("*.tif")):
        number = image.name.split("_")[0]
        pairs.append(
            (f"drive_{number}", image, folder / "1st_manual" / f"{number}_manual1.gif",
             folder / "mask" / image.name.replace(".tif", "_mask.gif"))
        )  # fmt: skip
    return pairs


def write_png_dataset(
    raw: Path, n_train: int = 5, n_test: int = 2, size: int | None = 96, scale: int = 2, map_labels: bool = True
) -> tuple[Path, list[str]]:
    """``raw/Dataset042_DRIVE`` (imagesTr, labelsTr, imagesTs, labelsTs, dataset.json); returns it and the test ids.

    ``map_labels=False`` keeps the masks' 0/255 values (a dataset the pipeline must refuse).
    """
    from PIL import Image

    task = raw / DATASET
    for sub in ("imagesTr", "labelsTr", "imagesTs", "labelsTs"):
        (task / sub).mkdir(parents=True, exist_ok=True)
    jobs = [("Tr", p) for p in drive_pairs("training")[:n_train]] + [("Ts", p) for p in drive_pairs("test")[:n_test]]
    for where, (case, image, vessels, _fov) in jobs:
        rgb = _crop(np.asarray(Image.open(image).convert("RGB")), size, scale)
        mask = _crop(np.asarray(Image.open(vessels)), size, scale)
        Image.fromarray(np.ascontiguousarray(rgb)).save(task / f"images{where}" / f"{case}_0000.png")
        label = (mask > 127).astype(np.uint8) if map_labels else np.ascontiguousarray(mask)
        Image.fromarray(label).save(task / f"labels{where}" / f"{case}.png")
    info = {
        "channel_names": {"0": "R", "1": "G", "2": "B"},
        "labels": {"background": 0, "vessel": 1},
        "numTraining": n_train,
        "file_ending": ".png",
        "name": "DRIVE crops",
        "reference": "Staal et al., IEEE TMI 23(4) 2004",
    }
    (task / "dataset.json").write_text(json.dumps(info, indent=2))
    return task, [case for where, (case, *_rest) in jobs if where == "Ts"]
