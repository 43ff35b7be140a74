"""The 2d configuration end to end on a few real hippocampus cases: 2D patches cut from the
preprocessed 3D volumes for training, slice-wise 2D sliding windows (mirrored over both in-plane
axes) for prediction, segmentations written back in the 3D input geometry."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from segforge.testing.cli import run_segforge as cli  # segforge ARGS in this process -> exit code

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from segforge_tiny_task import shrink_network  # noqa: E402

DATASET = "Task004_Hippocampus"
N_CASES = 6


def link_cases(msd: Path, raw: Path, test_folder: Path) -> list[str]:
    """A Task folder with the first ``N_CASES`` training cases; two more as test images."""
    info = json.loads((msd / "dataset.json").read_text())
    names = sorted(p.name for p in (msd / "imagesTr").glob("hippocampus_*.nii.gz"))[: N_CASES + 2]
    task = raw / DATASET
    for sub in (task / "imagesTr", task / "labelsTr", test_folder):
        sub.mkdir(parents=True)
    for name in names[:N_CASES]:
        (task / "imagesTr" / name.replace(".nii.gz", "_0000.nii.gz")).symlink_to(msd / "imagesTr" / name)
        (task / "labelsTr" / name).symlink_to(msd / "labelsTr" / name)
    for name in names[N_CASES:]:
        (test_folder / name.replace(".nii.gz", "_0000.nii.gz")).symlink_to(msd / "imagesTr" / name)
    training = [{"image": f"./imagesTr/{n}", "label": f"./labelsTr/{n}"} for n in names[:N_CASES]]
    info.update(numTraining=N_CASES, training=training, test=[])
    (task / "dataset.json").write_text(json.dumps(info))
    return [n.removesuffix(".nii.gz") for n in names[N_CASES:]]


def test_2d_trains_on_slices_and_predicts_3d_volumes(hippocampus_msd, tmp_path, monkeypatch):
    for var, sub in (("SEGFORGE_RAW", "raw"), ("SEGFORGE_PREPROCESSED", "pre"), ("SEGFORGE_RESULTS", "results")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    tests = link_cases(hippocampus_msd, tmp_path / "raw", tmp_path / "imagesTs")
    assert cli("plan-and-preprocess", "--task", "4", "-np", "1", "-c", "2d") == 0
    plans_file = tmp_path / "pre" / DATASET / "segforgePlans.json"
    shrink_network(plans_file, [4, 8, 16, 32, 32, 32, 32])
    conf = json.loads(plans_file.read_text())["configurations"]["2d"]
    assert len(conf["patch_size"]) == 2
    assert cli("train", "--task", "4", "--fold", "0", "--config", "2d", "--epochs", "1", "--iterations-per-epoch", "2",
               "--set", "val_iterations=1", "--set", "threads=1") == 0  # fmt: skip
    fold = tmp_path / "results" / DATASET / "2d" / "default__generic_unet__segforgePlans" / "fold_0"
    log = (fold / "training_log.txt").read_text()
    assert f"patch {conf['patch_size']}" in log
    from segforge.inference.model_loading import load_model

    model = load_model(fold / "checkpoint_final.pt")
    assert list(model.mirror_axes) == [0, 1]  # test-time mirroring over both in-plane axes
    out = tmp_path / "out"
    assert cli("predict", "-i", str(tmp_path / "imagesTs"), "-o", str(out), "--task", "4", "--config", "2d",
               "-f", "0", "--sequential") == 0  # fmt: skip
    for case in tests:
        pred = sitk.ReadImage(str(out / f"{case}.nii.gz"))
        image = sitk.ReadImage(str(tmp_path / "imagesTs" / f"{case}_0000.nii.gz"))
        assert pred.GetSize() == image.GetSize()
        np.testing.assert_allclose(pred.GetSpacing(), image.GetSpacing())
        np.testing.assert_allclose(pred.GetOrigin(), image.GetOrigin())
        np.testing.assert_allclose(pred.GetDirection(), image.GetDirection())
        assert set(np.unique(sitk.GetArrayFromImage(pred))) <= {0, 1, 2}


@pytest.mark.parametrize("shape", [(5, 9, 7)])
def test_2d_sliding_window_predicts_every_slice_on_its_own(shape):
    """A 2D network on a 3D image: each slice's logits are the network applied to that slice alone."""
    import torch

    from segforge.inference.sliding_window import predict_sliding_window

    torch.manual_seed(0)
    net = torch.nn.Conv2d(1, 3, 3, padding=1)
    image = torch.randn(1, *shape)
    logits = predict_sliding_window(net, image, (9, 7), mirror_axes=(0, 1), precision="fp32")
    assert tuple(logits.shape) == (3, *shape)
    for z in range(shape[0]):
        x = image[:, z][None]
        flips = [net(x), net(x.flip(2)).flip(2), net(x.flip(3)).flip(3), net(x.flip(2, 3)).flip(2, 3)]
        expected = torch.stack(flips).mean(0)[0]
        torch.testing.assert_close(logits[:, z], expected.detach(), atol=1e-5, rtol=1e-5)
