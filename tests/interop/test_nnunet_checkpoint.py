"""nnU-Net checkpoints are read weights-only with a numpy allow-list: real ones load, planted code never runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from segforge_nnunet_fixture import PLAIN

from segforge.interop.nnunet import NnunetCheckpointError, load_nnunet_checkpoint
from segforge.interop.nnunet.checkpoint import allowed_global_names

pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")


class Payload:
    """Unpickling this calls ``open(marker, "w")``: the file appearing proves code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def planted_model(tmp_path: Path, extra: object) -> Path:
    """A copy of the real nnU-Net model folder whose checkpoint's logging also holds ``extra``."""
    model = tmp_path / "nnunet_model"
    shutil.copytree(PLAIN / "model", model)
    path = model / "fold_0" / "checkpoint_final.pth"
    payload = load_nnunet_checkpoint(path)
    payload["logging"]["planted"] = extra
    torch.save(payload, path)
    return model


def test_real_nnunet_checkpoint_loads_with_only_the_allowed_numpy_globals():
    path = PLAIN / "model" / "fold_0" / "checkpoint_final.pth"
    found = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    assert found and set(found) <= set(allowed_global_names())  # numpy scalars in the logs: the allow-list is used
    payload = load_nnunet_checkpoint(path)
    assert payload["init_args"]["configuration"] == "3d_fullres"
    assert tuple(payload["inference_allowed_mirroring_axes"]) == (0, 1, 2)
    assert isinstance(payload["_best_ema"], np.floating)
    assert payload["network_weights"]["encoder.stages.0.0.convs.0.conv.weight"].shape[0] == 8


def test_planted_reduce_payload_is_refused_unexecuted_naming_file_and_global(tmp_path: Path):
    marker = tmp_path / "pwned"
    model = planted_model(tmp_path, Payload(marker))
    path = model / "fold_0" / "checkpoint_final.pth"
    with pytest.raises(NnunetCheckpointError) as info:
        load_nnunet_checkpoint(path)
    assert str(path) in info.value.message and "io.open" in info.value.message
    assert "\n" not in info.value.message and info.value.hint
    assert not marker.exists()


def test_numpy_arrays_are_not_on_the_allow_list(tmp_path: Path):
    """Only scalars and dtypes: an array rebuild is another global (``_reconstruct``) and is refused."""
    model = planted_model(tmp_path, np.arange(3))
    with pytest.raises(NnunetCheckpointError, match="_reconstruct"):
        load_nnunet_checkpoint(model / "fold_0" / "checkpoint_final.pth")


def test_predict_on_planted_folder_exits_with_one_line_and_writes_nothing(tmp_path: Path, run_main, hippocampus_msd):
    marker = tmp_path / "pwned"
    model = planted_model(tmp_path, Payload(marker))
    images = tmp_path / "images"
    images.mkdir()
    (images / "hippocampus_393_0000.nii.gz").symlink_to(hippocampus_msd / "imagesTr" / "hippocampus_393.nii.gz")
    out = tmp_path / "preds"
    code, _, err = run_main(["predict", "-m", str(model), "-i", str(images), "-o", str(out), "--device", "cpu"])
    assert code == 2, err
    assert "Traceback" not in err and "io.open" in err and "checkpoint_final.pth" in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1
    assert not marker.exists()
    assert not out.exists() or not any(out.iterdir())


def test_truncated_checkpoint_is_one_line_error(tmp_path: Path):
    path = tmp_path / "checkpoint_final.pth"
    path.write_bytes((PLAIN / "model" / "fold_0" / "checkpoint_final.pth").read_bytes()[:5000])
    with pytest.raises(NnunetCheckpointError, match="not a readable checkpoint"):
        load_nnunet_checkpoint(path)
