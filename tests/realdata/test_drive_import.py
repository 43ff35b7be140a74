"""DRIVE as shipped: RGB TIFF photographs, 0/255 GIF vessel masks, the official training/test split.

``import-dataset`` links the TIFFs (one file holds R, G and B: ``--channel R,G,B=...``), writes the
GIF masks as TIFF labels with 255 -> 1 (``--label-map``) and sends the test split's cases and
their first reader's masks to imagesTs / labelsTs. The images are read by the builtin natural-image
IO (Pillow). Here on crops of a few images, written in the shipped layout and formats.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from segforge.io.natural_image import NaturalImage2DIO

#: the documented command (docs/your-data.md)
IMPORT = [
    "import-dataset", "{src}", "--name", "Task504_DRIVE",
    "--channel", "R,G,B={split}/images/{case}_{split}.tif",
    "--labels", "{split}/1st_manual/{case}_manual1.gif",
    "--label-map", "0=0,255=1", "--label-name", "vessel=1", "--test", "split=test", "--link",
]  # fmt: skip
TRAIN = ["--epochs", "1", "--iterations-per-epoch", "2", "--set", "val_iterations=1", "--set", "threads=1"]
CASES = {"training": ["21", "22", "23"], "test": ["01"]}


def _cropped_drive(drive: Path, dst: Path, size: int = 64) -> Path:
    """The shipped file names and formats (RGB TIFF, palette GIF 0/255), cropped at the image centre."""
    from PIL import Image

    for split, numbers in CASES.items():
        for n in numbers:
            for sub, name in (("images", f"{n}_{split}.tif"), ("1st_manual", f"{n}_manual1.gif")):
                image = Image.open(drive / split / sub / name)
                left, top = (image.width - size) // 2, (image.height - size) // 2
                (dst / split / sub).mkdir(parents=True, exist_ok=True)
                image.crop((left, top, left + size, top + size)).save(dst / split / sub / name)
    return dst


@pytest.fixture
def imported(drive_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_main) -> Path:
    for var, sub in (("RAW", "raw"), ("PREPROCESSED", "pre"), ("RESULTS", "results")):
        monkeypatch.setenv(f"SEGFORGE_{var}", str(tmp_path / sub))
    src = _cropped_drive(drive_root, tmp_path / "DRIVE")
    code, out, err = run_main([a.replace("{src}", str(src)) for a in IMPORT] + ["-np", "1"])
    assert code == 0, err
    assert "imported 3 training and 1 test case(s)" in out
    return tmp_path


def test_drive_rgb_tiff_linked_and_gif_masks_mapped(imported: Path) -> None:
    from PIL import Image

    raw = imported / "raw" / "Task504_DRIVE"
    assert json.loads((raw / "dataset.json").read_text())["channel_names"] == {"0": "R", "1": "G", "2": "B"}
    assert (raw / "imagesTr" / "21_0000.tif").is_symlink() and (raw / "labelsTs" / "01.tif").is_file()
    for split, folder, case in (("training", "labelsTr", "21"), ("test", "labelsTs", "01")):
        label = np.asarray(Image.open(raw / folder / f"{case}.tif"))
        gif = imported / "DRIVE" / split / "1st_manual" / f"{case}_manual1.gif"
        shipped = NaturalImage2DIO().read_seg(gif)[0][0, 0]  # the GIF's gray values, as it looks
        assert sorted(np.unique(shipped)) == [0, 255]
        np.testing.assert_array_equal(label, (shipped == 255).astype(label.dtype))
    data, _ = NaturalImage2DIO().read_images([raw / "imagesTr" / "21_0000.tif"])
    assert data.shape == (3, 1, 64, 64)


@pytest.mark.slow  # 2d planning, training and prediction: ~30-80 s on 2 busy cores
def test_drive_from_shipped_files_to_evaluated_prediction(imported: Path, run_main) -> None:
    from PIL import Image

    tmp_path, raw = imported, imported / "raw" / "Task504_DRIVE"
    code, out, err = run_main(["plan-and-preprocess", "--task", "504", "-c", "2d", "-np", "1"])
    assert code == 0, err
    code, out, err = run_main(["train", "--task", "504", "--fold", "all", "--config", "2d", "--device", "cpu", *TRAIN])
    assert code == 0, err
    pred = tmp_path / "pred"
    code, out, err = run_main(["predict", "-i", str(raw / "imagesTs"), "-o", str(pred), "--task", "504", "-c", "2d",
                               "--folds", "all", "--no-tta", "--device", "cpu"])  # fmt: skip
    assert code == 0, err
    written = sorted(p.name for p in pred.iterdir() if not p.name.endswith(".json"))
    assert written == ["01.tif"]
    assert np.asarray(Image.open(pred / "01.tif")).shape == (64, 64)
    code, out, err = run_main(
        [
            "evaluate",
            "--ref",
            str(raw / "labelsTs"),
            "--pred",
            str(pred),
            "--dataset-json",
            str(raw / "dataset.json"),
            "-np",
            "1",
        ]
    )
    assert code == 0, err
    assert sorted(json.loads((pred / "summary.json").read_text())["mean"]) == ["1"]
