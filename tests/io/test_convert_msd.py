"""convert-msd: MSD folder -> TaskNNN_Name with per-channel images; resumable and idempotent."""

from __future__ import annotations

import filecmp
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from segforge.errors import ConfigError, UsageError
from segforge.io.convert_msd import convert_msd
from segforge.io.layouts import open_raw_dataset
from segforge.io.verify import verify_dataset
from segforge.testing.synthetic import make_task

CASES = ("hippocampus_001", "hippocampus_003", "hippocampus_004", "hippocampus_006", "hippocampus_007")


@pytest.fixture
def msd_subset(hippocampus_msd: Path, tmp_path: Path) -> Path:
    """Five real cases (003's label is float32) in an MSD folder, plus a macOS ``._`` file."""
    src = tmp_path / "msd" / "Task04_Hippocampus"
    for sub in ("imagesTr", "labelsTr"):
        (src / sub).mkdir(parents=True)
        for case in CASES:
            shutil.copyfile(hippocampus_msd / sub / f"{case}.nii.gz", src / sub / f"{case}.nii.gz")
    shutil.copyfile(hippocampus_msd / "dataset.json", src / "dataset.json")
    (src / "imagesTr" / "._hippocampus_001.nii.gz").write_bytes(b"\x00\x05\x16\x07 mac resource fork")
    return src


def _snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.rglob("*") if p.is_file()
    }


def test_real_subset_converts_to_v1_layout(msd_subset: Path, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    summary = convert_msd(msd_subset, raw, num_processes=2, show_progress=False)
    out = raw / "Task004_Hippocampus"
    assert (summary.output, summary.converted, summary.skipped) == (out, 5, 0)
    assert sorted(p.name for p in (out / "imagesTr").iterdir()) == [f"{c}_0000.nii.gz" for c in CASES]
    for case in CASES:
        assert filecmp.cmp(msd_subset / "labelsTr" / f"{case}.nii.gz", out / "labelsTr" / f"{case}.nii.gz", False)
        assert filecmp.cmp(msd_subset / "imagesTr" / f"{case}.nii.gz", out / "imagesTr" / f"{case}_0000.nii.gz", False)
    info = json.loads((out / "dataset.json").read_text())
    assert info["numTraining"] == 5 and info["modality"] == {"0": "MRI"}
    assert info["training"][0] == {
        "image": "./imagesTr/hippocampus_001.nii.gz",
        "label": "./labelsTr/hippocampus_001.nii.gz",
    }
    assert info["labels"] == {"0": "background", "1": "Anterior", "2": "Posterior"} and info["test"] == []
    ds = open_raw_dataset(out)
    assert [c.case_id for c in ds.cases] == list(CASES)
    report = verify_dataset(ds, num_processes=1)
    assert report.ok and report.warnings == [], report.errors + report.warnings


def test_rerun_is_a_no_op(msd_subset: Path, tmp_path: Path) -> None:
    convert_msd(msd_subset, tmp_path / "raw", num_processes=1, show_progress=False)
    out = tmp_path / "raw" / "Task004_Hippocampus"
    before = _snapshot(out)
    summary = convert_msd(msd_subset, tmp_path / "raw", num_processes=1, show_progress=False)
    assert (summary.converted, summary.skipped, summary.files_written) == (0, 5, 0)
    assert _snapshot(out) == before  # same files, same bytes, same mtimes


def test_interrupted_run_is_resumed(tmp_path: Path) -> None:
    src = make_task(tmp_path / "msd" / "Task09_Syn", n_cases=3, layout="msd", channels=2)
    raw = tmp_path / "raw"
    convert_msd(src, raw, num_processes=1, show_progress=False)
    out = raw / "Task009_Syn"
    complete = {k: v[1] for k, v in _snapshot(out).items()}
    (out / "dataset.json").unlink()  # as if killed before the end
    (out / "imagesTr" / "case_001_0001.nii.gz").unlink()
    (out / "imagesTr" / ".case_002_0000.nii.gz.abc.tmp.nii.gz").write_bytes(b"half")  # interrupted atomic write
    summary = convert_msd(src, raw, num_processes=1, show_progress=False)
    assert (summary.converted, summary.skipped, summary.files_written) == (1, 2, 1)
    after = {k: v[1] for k, v in _snapshot(out).items() if not Path(k).name.startswith(".")}
    assert after == complete


def test_4d_msd_case_is_split_per_channel(tmp_path: Path) -> None:
    src = make_task(tmp_path / "Task01_Multi", n_cases=2, layout="msd", channels=["T1", "T2"], n_test=1,
                    shape=(5, 6, 7), spacing=(3.0, 0.5, 0.75))  # fmt: skip
    four_d = sitk.ReadImage(str(src / "imagesTr" / "case_000.nii.gz"))
    assert four_d.GetDimension() == 4
    convert_msd(src, tmp_path / "raw", num_processes=1, show_progress=False)
    out = tmp_path / "raw" / "Task001_Multi"
    label = sitk.ReadImage(str(out / "labelsTr" / "case_000.nii.gz"))
    data = sitk.GetArrayFromImage(four_d)
    for channel in (0, 1):
        image = sitk.ReadImage(str(out / "imagesTr" / f"case_000_{channel:04d}.nii.gz"))
        assert image.GetDimension() == 3 and image.GetSize() == label.GetSize() == (7, 6, 5)
        assert image.GetSpacing() == pytest.approx(label.GetSpacing())
        assert image.GetOrigin() == pytest.approx(label.GetOrigin())
        assert image.GetDirection() == pytest.approx(label.GetDirection())
        assert image.GetPixelID() == four_d.GetPixelID()
        np.testing.assert_array_equal(sitk.GetArrayFromImage(image), data[channel])
    assert sorted(p.name for p in (out / "imagesTs").iterdir()) == ["case_002_0000.nii.gz", "case_002_0001.nii.gz"]
    info = json.loads((out / "dataset.json").read_text())
    assert info["modality"] == {"0": "T1", "1": "T2"} and info["test"] == ["./imagesTs/case_002.nii.gz"]
    report = verify_dataset(open_raw_dataset(out), num_processes=1)
    assert report.ok and report.num_channels == 2


def test_existing_different_output_needs_overwrite(tmp_path: Path) -> None:
    src = make_task(tmp_path / "msd" / "Task02_A", n_cases=2, layout="msd")
    out = tmp_path / "raw" / "Task002_A"
    (out / "imagesTr").mkdir(parents=True)
    (out / "imagesTr" / "someone_else_0000.nii.gz").write_bytes(b"x")
    with pytest.raises(UsageError, match=r"already exists with other content \(imagesTr/someone_else_0000") as info:
        convert_msd(src, tmp_path / "raw", num_processes=1, show_progress=False)
    assert "--overwrite" in info.value.hint
    summary = convert_msd(src, tmp_path / "raw", num_processes=1, overwrite=True, show_progress=False)
    assert summary.converted == 2 and not (out / "imagesTr" / "someone_else_0000.nii.gz").exists()


def test_same_names_but_different_label_bytes_are_refused(tmp_path: Path) -> None:
    src = make_task(tmp_path / "msd" / "Task02_A", n_cases=2, layout="msd")
    convert_msd(src, tmp_path / "raw", num_processes=1, show_progress=False)
    (tmp_path / "raw" / "Task002_A" / "dataset.json").unlink()
    shutil.copyfile(
        src / "labelsTr" / "case_000.nii.gz", tmp_path / "raw" / "Task002_A" / "labelsTr" / "case_001.nii.gz"
    )
    with pytest.raises(ConfigError, match=r"labelsTr/case_001\.nii\.gz exists with different content"):
        convert_msd(src, tmp_path / "raw", num_processes=1, show_progress=False)


def test_task_id_and_names(tmp_path: Path) -> None:
    src = make_task(tmp_path / "Spleen", n_cases=1, layout="msd")
    with pytest.raises(UsageError, match="cannot tell the task number") as info:
        convert_msd(src, tmp_path / "raw", show_progress=False)
    assert info.value.hint == "pass --task-id N"
    summary = convert_msd(src, tmp_path / "raw", task_id=42, num_processes=1, show_progress=False)
    assert summary.output == tmp_path / "raw" / "Task042_Spleen"


def test_missing_label_and_channel_mismatch(tmp_path: Path) -> None:
    src = make_task(tmp_path / "Task03_B", n_cases=2, layout="msd")
    (src / "labelsTr" / "case_001.nii.gz").unlink()
    with pytest.raises(UsageError, match=r"labelsTr/case_001\.nii\.gz is missing for training image"):
        convert_msd(src, tmp_path / "raw", num_processes=1, show_progress=False)
    assert not (tmp_path / "raw").exists()
    src = make_task(tmp_path / "Task04_C", n_cases=1, layout="msd")
    info = json.loads((src / "dataset.json").read_text())
    info["modality"] = {"0": "T1", "1": "T2"}
    (src / "dataset.json").write_text(json.dumps(info))
    with pytest.raises(ConfigError, match="single-channel image, but dataset.json's modality lists 2 channels"):
        convert_msd(src, tmp_path / "raw", num_processes=1, show_progress=False)
