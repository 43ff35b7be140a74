"""Resource limits: a case too big for memory is refused with the option that fixes it, and a full disk
never leaves a half-written file under a final name (ENOSPC simulated mid-write)."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from corpus import TASK, Workspace, prepared, run_cli, workspace

from segforge import resources
from segforge.atomic import atomic_write_json
from segforge.config.jsonio import save_model
from segforge.errors import ConfigError
from segforge.resources import DiskFullError, ResourceError

__all__ = ["prepared", "workspace"]


def _half_then_enospc(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Make Path.write_bytes write half of its data, then fail as a full disk does; returns the paths tried."""
    tried: list[Path] = []

    def write_bytes(self: Path, data: bytes) -> int:
        tried.append(self)
        with open(self, "wb") as fh:
            fh.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    return tried


def test_disk_full_keeps_the_previous_file_and_names_the_final_path(tmp_path, monkeypatch) -> None:
    target = tmp_path / "plans.json"
    atomic_write_json(target, {"version": 1})
    tried = _half_then_enospc(monkeypatch)
    with pytest.raises(DiskFullError) as info:
        atomic_write_json(target, {"version": 2, "big": list(range(100))})
    assert tried and tried[0] != target  # the half-written bytes went to a temporary name
    assert str(info.value) == f"disk full while writing {target}"
    assert "free space" in info.value.hint
    assert json.loads(target.read_text()) == {"version": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plans.json"]  # no temporary left


def test_disk_full_with_a_pydantic_artifact(tmp_path, monkeypatch) -> None:
    from segforge.config.dataset import DatasetJson

    target = tmp_path / "model.json"
    model = DatasetJson.model_validate({"modality": {"0": "CT"}, "labels": {"0": "background"}, "numTraining": 0})
    save_model(target, model)
    before = target.read_bytes()
    _half_then_enospc(monkeypatch)
    with pytest.raises(DiskFullError, match="disk full while writing .*model.json"):
        save_model(target, model.model_copy(update={"numTraining": 3}))
    assert target.read_bytes() == before and os.listdir(tmp_path) == ["model.json"]


def test_cli_reports_disk_full_with_the_path(workspace: Workspace, capsys, monkeypatch) -> None:
    fingerprint = workspace.pre / "fingerprint.json"
    before = fingerprint.read_bytes()
    _half_then_enospc(monkeypatch)
    code, out, err = run_cli(["fingerprint", "--task", TASK, "-np", "1", "--overwrite"], capsys)
    assert code == 1 and "Traceback" not in err
    assert f"error: disk full while writing {fingerprint}" in " ".join(err.split())
    assert "hint: free space" in err
    assert fingerprint.read_bytes() == before
    assert not [p for p in workspace.pre.rglob("*.tmp*")]


def test_memory_limit_from_env_and_validation(monkeypatch) -> None:
    monkeypatch.setenv(resources.MAX_MEMORY_ENV, "2.5")
    assert resources.memory_limit() == resources.MemoryLimit(int(2.5 * 1024**3), "SEGFORGE_MAX_MEMORY_GB=2.5")
    for bad in ("0", "-1", "lots", "nan"):
        monkeypatch.setenv(resources.MAX_MEMORY_ENV, bad)
        with pytest.raises(ConfigError, match="SEGFORGE_MAX_MEMORY_GB=.* is not a positive number of GiB"):
            resources.memory_limit()
    monkeypatch.delenv(resources.MAX_MEMORY_ENV)
    limit = resources.memory_limit()
    assert limit is not None and limit.source == "available memory" and limit.bytes > 0


def test_available_memory_matches_proc_meminfo() -> None:
    if not Path("/proc/meminfo").is_file():
        pytest.skip("no /proc/meminfo on this system")
    lines = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    kib = int(lines["MemAvailable"].split()[0])
    assert abs(resources.available_memory_bytes() - kib * 1024) < 512 * 1024**2  # it moves a little


def test_resampled_voxels_follows_spacing_and_transpose() -> None:
    # (z, y, x) = (10, 20, 30) at (5, 1, 1) mm to (1, 1, 1): z grows 5x
    assert resources.resampled_voxels((10, 20, 30), (5.0, 1.0, 1.0), (1.0, 1.0, 1.0), (0, 1, 2)) == 50 * 20 * 30
    # transposed plans: target spacing (1, 1, 2.5) belongs to axes (y, x, z)
    assert resources.resampled_voxels((10, 20, 30), (5.0, 1.0, 1.0), (1.0, 1.0, 2.5), (1, 2, 0)) == 20 * 30 * 20
    # a 2D configuration resamples only the in-plane axes
    assert resources.resampled_voxels((10, 20, 30), (5.0, 1.0, 1.0), (0.5, 0.5), (0, 1, 2)) == 40 * 60


def test_check_memory_message_names_the_fix(monkeypatch) -> None:
    monkeypatch.setenv(resources.MAX_MEMORY_ENV, "1")
    resources.check_memory(1024**3, "fits exactly", "nothing")  # no error at the limit
    with pytest.raises(ResourceError) as info:
        resources.check_memory(3 * 1024**3, "predicting a.nii.gz", "predict one case at a time (--sequential)")
    assert str(info.value) == (
        "predicting a.nii.gz needs about 3.0 GiB of memory but the limit is 1.0 GiB (SEGFORGE_MAX_MEMORY_GB=1)"
    )
    assert info.value.hint.startswith("predict one case at a time (--sequential); or set SEGFORGE_MAX_MEMORY_GB")


def test_preprocess_memory_error_suggests_fewer_workers(workspace: Workspace, capsys, monkeypatch) -> None:
    import shutil

    shutil.rmtree(workspace.pre / "segforgePlans_3d_fullres")
    monkeypatch.setenv(resources.MAX_MEMORY_ENV, "0.000056")  # ~60 KB: one case (~43 KB) fits, two at once do not
    code, _, err = run_cli(["preprocess", "--task", TASK, "-np", "2", "-c", "3d_fullres"], capsys)
    flat = " ".join(err.split())
    assert code == 1 and "error: preprocessing case_00" in flat, err
    assert "hint: use fewer workers (-np 1; 2 cases are preprocessed at once), or check" in flat
    assert not (workspace.pre / "segforgePlans_3d_fullres").exists() or not any(
        (workspace.pre / "segforgePlans_3d_fullres").glob("*.npy")
    )


@pytest.mark.parametrize(
    ("code", "expect"),
    [
        (errno.ENOSPC, "disk full while writing /x/y"),
        (errno.EACCES, "permission denied: /x/y"),
        (errno.ENOTDIR, "/x/y: Not a directory"),
        (errno.EIO, "/x/y: Input/output error"),
    ],
)
def test_os_error_messages(code: int, expect: str) -> None:
    error = resources.os_error(OSError(code, os.strerror(code), "/x/y"))
    assert str(error) == expect and error.hint
