"""Bad 2D natural-image inputs (PNG, GIF): label values a dataset does not declare, transparent images.

Each kind writes a small natural-image dataset ``Task098_Natural`` beside the workspace's task
(the NIfTI task's model cannot read PNG) and breaks one file; the command meets it on task 98.
Listed in :data:`corpus_kinds.CORPUS` and in docs/reliability.md like every other kind.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from corpus import BadInput, Workspace

NATURAL_TASK = "98"
NATURAL_DATASET = "Task098_Natural"
NATURAL_FINGERPRINT = ("fingerprint", "--task", NATURAL_TASK, "-np", "1", "--overwrite")
NATURAL_VERIFY = ("verify", "--task", NATURAL_TASK, "-np", "1")


def natural_task(ending: str, rgb: bool, break_case: Callable[[Path], None]) -> Callable[[Workspace], None]:
    """A setup writing 2 cases of 12x10 pixels (``rgb``: one RGB file per case) with labels 0/1, then breaking one."""

    def setup(ws: Workspace) -> None:
        from PIL import Image

        task = ws.root / "raw" / NATURAL_DATASET
        rng = np.random.default_rng(0)
        for sub in ("imagesTr", "labelsTr"):
            (task / sub).mkdir(parents=True)
        for case in ("case_1", "case_2"):
            pixels = rng.integers(1, 255, (12, 10, 3) if rgb else (12, 10), dtype=np.uint8)
            Image.fromarray(pixels).save(task / "imagesTr" / f"{case}_0000{ending}")
            label = np.zeros((12, 10), np.uint8)
            label[3:7, 2:6] = 1
            Image.fromarray(label).save(task / "labelsTr" / f"{case}{ending}")
        channels = {"0": "R", "1": "G", "2": "B"} if rgb else {"0": "gray"}
        info = {"channel_names": channels, "labels": {"background": 0, "cell": 1}, "numTraining": 2,
                "file_ending": ending}  # fmt: skip
        (task / "dataset.json").write_text(json.dumps(info))
        break_case(task)

    return setup


def label_values(ending: str, values: tuple[int, ...]) -> Callable[[Path], None]:
    """case_1's label holding ``values`` (e.g. a 0/255 mask never mapped to 0/1)."""

    def change(task: Path) -> None:
        from PIL import Image

        label = np.zeros((12, 10), np.uint8)
        for i, value in enumerate(values):
            label[i + 2, 2:6] = value
        Image.fromarray(label).save(task / "labelsTr" / f"case_1{ending}")

    return change


def transparent_image(task: Path) -> None:
    """case_1's image as RGBA with a transparent corner."""
    from PIL import Image

    rgba = np.full((12, 10, 4), 200, np.uint8)
    rgba[..., 3] = 255
    rgba[:3, :3, 3] = 0
    Image.fromarray(rgba).save(task / "imagesTr" / "case_1_0000.png")


NATURAL = [
    BadInput(
        "png-label-0-255",
        "natural image",
        "PNG mask stored 0/255, dataset declares 0/1",
        natural_task(".png", True, label_values(".png", (255,))),
        NATURAL_FINGERPRINT,
        "labelsTr/case_1.png: label value(s) 255 not declared in dataset.json",
    ),
    BadInput(
        "gif-label-unexpected",
        "natural image",
        "GIF label holding value 7",
        natural_task(".gif", False, label_values(".gif", (1, 7))),
        NATURAL_FINGERPRINT,
        "labelsTr/case_1.gif: label value(s) 7 not declared in dataset.json",
    ),
    BadInput(
        "png-rgba-transparent",
        "natural image",
        "RGBA image with transparent pixels",
        natural_task(".png", True, transparent_image),
        NATURAL_FINGERPRINT,
        "case_1_0000.png: RGBA image with 9 (partly) transparent pixel(s)",
    ),
    BadInput(
        "png-rgba-verify",
        "natural image",
        "the same RGBA image, checked by verify",
        natural_task(".png", True, transparent_image),
        NATURAL_VERIFY,
        "imagesTr/case_1_0000.png: RGBA image with 9 (partly) transparent pixel(s)",
    ),
]
