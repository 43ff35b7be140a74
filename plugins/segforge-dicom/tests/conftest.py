"""Fixtures: the real CT series (skipped with a reason when absent), complete/broken copies of it, a tiny model.

The series is TotalSegmentator's test export (20 CT slices, JPEG 2000 lossless, UIDs blanked by
de-identification) with ``example_seg_dicom.nii.gz`` on its grid. Broken inputs are made from
copies of the real slices, never from invented files.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

SHARED_DATA = Path(os.environ.get("SEGFORGE_TEST_DATA", Path(__file__).resolve().parents[4] / "shared" / "data"))
EXAMPLES = SHARED_DATA / "TotalSegmentator_examples"
CT_SERIES = EXAMPLES / "example_ct_dicom"
SEG_ON_SERIES = EXAMPLES / "example_seg_dicom.nii.gz"
#: a small U-Net and the spacing (z, y, x) it is planned at: the 512x512x20 CT becomes 20x64x64 voxels
TINY_UNET = {"features_per_stage": [4, 8], "kernel_sizes": [[3, 3, 3], [3, 3, 3]], "strides": [[1, 1, 1], [2, 2, 2]],
             "n_conv_per_stage": [1, 1], "n_conv_per_stage_decoder": [1]}  # fmt: skip
MODEL_SPACING = (2.0, 8.0, 8.0)
MODEL_LABELS = {"background": 0, "body": 1, "dense": 2}


@pytest.fixture(autouse=True)
def _isolated_segforge(monkeypatch: pytest.MonkeyPatch):
    """A fresh plugin manager per test and no SEGFORGE_* settings from the caller's shell."""
    for var in ("SEGFORGE_RAW", "SEGFORGE_PREPROCESSED", "SEGFORGE_RESULTS", "SEGFORGE_DISABLE_PLUGINS",
                "SEGFORGE_PLUGINS", "SEGFORGE_DISABLE_PLUGIN_AUTOLOAD"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    from segforge import plugins

    plugins.reset_manager()
    yield
    plugins.reset_manager()


@pytest.fixture(scope="session")
def ct_series() -> Path:
    if not (CT_SERIES.is_dir() and SEG_ON_SERIES.is_file()):
        pytest.skip(f"the TotalSegmentator DICOM example was not found at {CT_SERIES} (set SEGFORGE_TEST_DATA)")
    return CT_SERIES


def copy_series(source: Path, target: Path, *, study: str | None = None, series: str | None = None) -> Path:
    """Copy the slices; with ``study``/``series`` the copies get those UIDs (as a UID-remapping anonymiser would)."""
    import pydicom

    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.iterdir()):
        if study is None and series is None:
            shutil.copy(path, target / path.name)
            continue
        ds = pydicom.dcmread(path)
        ds.StudyInstanceUID = study or ds.StudyInstanceUID
        ds.SeriesInstanceUID = series or ds.SeriesInstanceUID
        ds.save_as(target / path.name)
    return target


@pytest.fixture(scope="session")
def complete_series(ct_series: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The series with Study/Series Instance UIDs filled in (a DICOM-SEG must reference them)."""
    from pydicom.uid import generate_uid

    folder = tmp_path_factory.mktemp("complete") / "ct"
    return copy_series(ct_series, folder, study=generate_uid(entropy_srcs=["study"]),
                       series=generate_uid(entropy_srcs=["series"]))  # fmt: skip


def write_tiny_model(root: Path, stage: str = "3d_fullres") -> Path:
    """A fold folder under ``root`` holding a checkpoint of a freshly built 2-stage U-Net (random weights, seed 0).

    ``stage="3d_cascade_fullres"`` makes the second stage of a cascade (plans with 3d_lowres before it;
    its network takes the image and the lowres one-hot).
    """
    import torch

    from segforge.artifacts.checkpoint import CHECKPOINT_FORMAT_VERSION, CHECKPOINT_KEYS, save_checkpoint
    from segforge.config.plans import ConfigurationPlan, IntensityStats, NetworkSpec, ResamplingSpec
    from segforge.networks.generic_unet import GenericUNetBuilder
    from segforge.testing.plans import plans_for

    def conf(name: str, **links: str) -> ConfigurationPlan:
        return ConfigurationPlan(
            name=name, data_identifier=f"segforgePlans_{name}", spacing=list(MODEL_SPACING),
            patch_size=[16, 32, 32], batch_size=2, median_image_size_in_voxels=[20.0, 64.0, 64.0],
            normalization=["ct"], use_mask_for_norm=[False], resampling=ResamplingSpec(),
            network=NetworkSpec(name="generic_unet", version="1.0", params=TINY_UNET), **links,
        )  # fmt: skip

    confs = [conf(stage)]
    if stage == "3d_cascade_fullres":
        confs = [conf("3d_lowres", next_stage=stage), conf(stage, previous_stage="3d_lowres")]
    stats = IntensityStats(mean=40.0, median=40.0, std=300.0, min=-1024.0, max=2000.0, percentile_00_5=-1000.0,
                           percentile_99_5=1500.0)  # fmt: skip
    plans = plans_for(*confs, stats=stats, labels=MODEL_LABELS, dataset="Task123_DicomTest")
    in_channels = 1 if stage != "3d_cascade_fullres" else len(MODEL_LABELS)  # image + one-hot of labels 1, 2
    torch.manual_seed(0)
    net = GenericUNetBuilder().build(TINY_UNET, in_channels, len(MODEL_LABELS), deep_supervision=True)
    payload = {key: None for key in CHECKPOINT_KEYS}
    payload.update(
        format_version=CHECKPOINT_FORMAT_VERSION, segforge_version="0", network_weights=net.state_dict(),
        optimizer_state={}, schedule={}, progress={"iteration": 1}, logs={}, rng={}, seed=0,
        plans_json=plans.model_dump_json(), configuration=stage,
        network={"name": "generic_unet", "version": "1.0", "params": TINY_UNET, "in_channels": in_channels,
                 "num_classes": len(MODEL_LABELS), "deep_supervision": True,
                 "origin": {"plugin": "builtin.networks", "dist": "segforge", "version": "0", "builtin": True}},
        trainer={"name": "default", "version": "1.0", "params": {}}, loss={"name": "dc_ce", "params": {}},
        versions={"segforge": "0", "plugins": []},
    )  # fmt: skip
    fold = root / "Task123_DicomTest" / stage / "default__generic_unet__segforgePlans" / "fold_0"
    fold.mkdir(parents=True)
    save_checkpoint(fold / "checkpoint_final.pt", payload)
    return fold


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3d_fullres fold folder with random weights: the CT is predicted at 8 x 8 x 2 mm (64 x 64 x 20 voxels)."""
    return write_tiny_model(tmp_path_factory.mktemp("model"))


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]):
    """``run_cli("dicom", "to-seg", ...)`` -> (exit code, stdout, stderr) of the real ``segforge`` in-process."""
    from segforge.cli.app import main

    def run(*args: str) -> tuple[int, str, str]:
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
