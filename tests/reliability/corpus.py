"""The bad-input corpus: each kind of broken input a user can hand segforge, made by code.

A :class:`Workspace` is a copy of a small, valid, fully prepared task (raw synthetic images,
fingerprint, plans, preprocessed cases, a tiny checkpoint, test images). Each
:class:`BadInput` breaks one thing in it (``setup``), names the command that meets it
(``args``, templated with the workspace's paths) and the text the one-line ``error:`` must
contain to name the file or field. The kinds are listed in :mod:`corpus_kinds`;
``tests/reliability/test_bad_inputs.py`` runs them all;
``docs/reliability.md`` lists them. Kept as plain code so the corpus never needs binaries in git.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inference"))  # inference_helpers

TASK = "99"
DATASET = "Task099_Test"
SHAPE = (12, 16, 14)
SPACING = (2.0, 1.0, 1.5)
RUN = Path(DATASET) / "3d_fullres" / "default__generic_unet__segforgePlans"


@dataclass(frozen=True)
class Workspace:
    """Paths of one prepared task copy; ``fields()`` feeds the command templates."""

    root: Path

    @property
    def raw(self) -> Path:
        return self.root / "raw" / DATASET

    @property
    def pre(self) -> Path:
        return self.root / "pre" / DATASET

    @property
    def fold(self) -> Path:
        return self.root / "results" / RUN / "fold_0"

    def fields(self) -> dict[str, str]:
        return {
            "root": str(self.root),
            "raw": str(self.raw),
            "pre": str(self.pre),
            "fold": str(self.fold),
            "ts": str(self.raw / "imagesTs"),
            "out": str(self.root / "out"),
        }

    def env(self) -> dict[str, str]:
        return {
            "SEGFORGE_RAW": str(self.root / "raw"),
            "SEGFORGE_PREPROCESSED": str(self.root / "pre"),
            "SEGFORGE_RESULTS": str(self.root / "results"),
        }


# -- commands ------------------------------------------------------------------------------------
VERIFY = ("verify", "--task", TASK, "-np", "1")
FINGERPRINT = ("fingerprint", "--task", TASK, "-np", "1", "--overwrite")
PREPROCESS = ("preprocess", "--task", TASK, "-np", "1", "-c", "3d_fullres")
PLAN = ("plan", "--task", TASK, "-np", "1", "-c", "3d_fullres", "--overwrite-plans")
TRAIN = ("train", "--task", TASK, "--fold", "0", "--epochs", "1", "--iterations-per-epoch", "1", "--device", "cpu",
         "--set", "val_iterations=1", "--set", "threads=1")  # fmt: skip
PREDICT = ("predict", "-i", "{ts}", "-o", "{out}", "-m", "{fold}", "--no-tta", "--sequential", "--device", "cpu")


@dataclass(frozen=True)
class BadInput:
    """One corpus entry: break the workspace, run ``args``, expect ``expect`` in the error line.

    ``severity="warning"``: the input is suspicious but usable; the command must succeed and
    print ``expect`` in its warnings instead.
    """

    id: str
    area: str
    description: str
    setup: Callable[[Workspace], None]
    args: tuple[str, ...]
    expect: str
    severity: str = "error"
    env: tuple[tuple[str, str], ...] = ()

    def argv(self, ws: Workspace) -> list[str]:
        return [a.format(**ws.fields()) for a in self.args]


# -- editing helpers -----------------------------------------------------------------------------
def edit_json(path: Path, change: Callable[[Any], Any]) -> None:
    data = json.loads(path.read_text())
    change(data)  # edits in place
    path.write_text(json.dumps(data, indent=2))


def dataset_json(change: Callable[[dict], Any]) -> Callable[[Workspace], None]:
    return lambda ws: edit_json(ws.raw / "dataset.json", change)


def plans(change: Callable[[dict], Any]) -> Callable[[Workspace], None]:
    return lambda ws: edit_json(ws.pre / "segforgePlans.json", change)


def conf3d(change: Callable[[dict], Any]) -> Callable[[Workspace], None]:
    return plans(lambda p: change(p["configurations"]["3d_fullres"]))


def read_array(path: Path) -> tuple[np.ndarray, Any]:
    import SimpleITK as sitk

    image = sitk.ReadImage(str(path))
    return sitk.GetArrayFromImage(image), image


def write_like(path: Path, array: np.ndarray, like: Any | None = None, **geometry: Any) -> None:
    """Write ``array`` to ``path`` with ``like``'s geometry, then apply ``spacing``/``origin``/``direction``."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(array, isVector=False)
    if like is not None and array.ndim == like.GetDimension():
        image.CopyInformation(like)
    for name, value in geometry.items():
        getattr(image, f"Set{name.capitalize()}")(value)
    sitk.WriteImage(image, str(path), True)


def image(ws: Workspace, case: int = 1, channel: int = 0) -> Path:
    return ws.raw / "imagesTr" / f"case_{case:03d}_{channel:04d}.nii.gz"


def label(ws: Workspace, case: int = 1) -> Path:
    return ws.raw / "labelsTr" / f"case_{case:03d}.nii.gz"


def change_image(change: Callable[[np.ndarray], np.ndarray], which: Callable = image, **geometry: Any):
    def setup(ws: Workspace) -> None:
        array, like = read_array(which(ws))
        write_like(which(ws), change(array), like, **geometry)

    return setup


def image_and_label(change: Callable[[np.ndarray], np.ndarray], **geometry: Any) -> Callable[[Workspace], None]:
    """The same change to a case's image and label, so only the property under test is wrong."""

    def setup(ws: Workspace) -> None:
        change_image(change, image, **geometry)(ws)
        change_image(change, label, **geometry)(ws)

    return setup


def truncate(path_of: Callable[[Workspace], Path], keep: float = 0.5) -> Callable[[Workspace], None]:
    def setup(ws: Workspace) -> None:
        data = path_of(ws).read_bytes()
        path_of(ws).write_bytes(data[: int(len(data) * keep)])

    return setup


def short_payload(ws: Workspace) -> None:
    """A well-formed gzip whose NIfTI voxel block is 100 bytes short (a cut-off export)."""
    raw = gzip.decompress(image(ws).read_bytes())
    image(ws).write_bytes(gzip.compress(raw[:-100]))


def shear_sform(ws: Workspace) -> None:
    """Image and label with a sheared sform (as some converters write); ITK would coerce it silently."""
    for path in (image(ws), label(ws)):
        head = bytearray(gzip.decompress(path.read_bytes()))
        head[254:256] = np.int16(1).tobytes()  # sform_code: scanner
        head[280:328] = np.array([[2, 0.8, 0, 0], [0, 1, 0, 0], [0, 0, 1.5, 0]], "<f4").tobytes()
        path.write_bytes(gzip.compress(bytes(head)))


def flip_byte(ws: Workspace) -> None:
    data = bytearray(image(ws).read_bytes())
    data[len(data) // 2] ^= 0xFF
    image(ws).write_bytes(bytes(data))


def with_value(value: float, where: tuple[int, ...] = (3, 4, 5)) -> Callable[[np.ndarray], np.ndarray]:
    def change(array: np.ndarray) -> np.ndarray:
        array = array.astype(np.float32)
        array[where] = value
        return array

    return change


def label_from_other_dataset(ws: Workspace) -> None:
    """A label exported from another study: other shape and spacing."""
    write_like(label(ws), np.zeros((10, 16, 14), np.uint8), spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0))


def second_channel_dataset(ws: Workspace) -> None:
    """dataset.json declares two channels, only _0000 exists for every case."""
    edit_json(ws.raw / "dataset.json", lambda d: d["modality"].update({"1": "ADC"}))


def missing_second_channel(ws: Workspace) -> None:
    """A two-channel dataset where one case lost its _0001 file."""
    second_channel_dataset(ws)
    for path in sorted((ws.raw / "imagesTr").glob("*_0000.nii.gz")):
        if "case_002" not in path.name:
            shutil.copy(path, path.with_name(path.name.replace("_0000", "_0001")))


def drop_label(ws: Workspace) -> None:
    label(ws, 2).unlink()


def stray_image_without_label(ws: Workspace) -> None:
    shutil.copy(image(ws, 0), ws.raw / "imagesTr" / "case_777_0000.nii.gz")


def wrong_channel_suffix(ws: Workspace) -> None:
    shutil.copy(image(ws, 0), ws.raw / "imagesTr" / "case_000_0001.nii.gz")


def no_channel_suffix(ws: Workspace) -> None:
    shutil.copy(image(ws, 0), ws.raw / "imagesTr" / "case_000.nii.gz")


def splits(content: Any) -> Callable[[Workspace], None]:
    return lambda ws: (ws.pre / "splits_final.json").write_text(json.dumps(content))


def checkpoint_from_other_network(ws: Workspace) -> None:
    """Weights of a bigger network under the right name: shapes cannot match the plans."""
    from inference_helpers import make_plans, write_checkpoint

    other = {"features_per_stage": [8, 16], "kernel_sizes": [[3, 3, 3], [3, 3, 3]], "strides": [[1, 1, 1], [2, 2, 2]],
             "n_conv_per_stage": [1, 1], "n_conv_per_stage_decoder": [1]}  # fmt: skip
    good = make_plans(SPACING, dataset=DATASET)
    path = write_checkpoint(ws.root / "other", make_plans(SPACING, dataset=DATASET, network_params=other))
    import torch

    payload = torch.load(path, weights_only=True)
    payload["plans_json"] = good.model_dump_json()
    payload["network"]["params"] = dict(good.configurations["3d_fullres"].network.params)
    torch.save(payload, ws.fold / "checkpoint_final.pt")
    shutil.rmtree(ws.root / "other")


def checkpoint_from_missing_plugin(ws: Workspace) -> None:
    import torch

    path = ws.fold / "checkpoint_final.pt"
    payload = torch.load(path, weights_only=True)
    payload["network"].update(
        name="swin_unet", origin={"plugin": "swinunet", "dist": "segforge-swinunet", "version": "0.3", "builtin": False}
    )
    torch.save(payload, path)


def unwritable_output(ws: Workspace) -> None:
    (ws.root / "out").write_text("a file where the output folder should be\n")


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its size and modification time (to prove nothing was written)."""
    return {
        p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()
    }


# -- fixtures and running (imported by the test modules) -------------------------------------------
def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from segforge import plugins
    from segforge.cli.app import main

    plugins.reset_manager()
    capsys.readouterr()
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        plugins.reset_manager()
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid task: raw (5 training + 2 test cases), fingerprint, plans, preprocessed 3d_fullres, a checkpoint."""
    from inference_helpers import make_plans, write_checkpoint

    from segforge import plugins
    from segforge.cli.app import main
    from segforge.testing.synthetic import make_task

    root = tmp_path_factory.mktemp("reliability_base")
    ws = Workspace(root)
    make_task(ws.raw, n_cases=5, n_test=2, shape=SHAPE, spacing=SPACING)
    with mock.patch.dict(os.environ, ws.env()):
        plugins.reset_manager()
        try:
            main(["plan-and-preprocess", "--task", TASK, "-np", "1", "--configs", "3d_fullres"])
        except SystemExit as exc:
            assert exc.code in (0, None), "preparing the reliability workspace failed"
        finally:
            plugins.reset_manager()
    write_checkpoint(root / "results" / RUN / "fold_0", make_plans(SPACING, dataset=DATASET))
    return root


@pytest.fixture
def workspace(prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    shutil.copytree(prepared, ws.root)
    for key, value in ws.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("COLUMNS", "400")  # verify's table must not wrap file names
    return ws
