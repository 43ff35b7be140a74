"""Finding tasks by number or name, listing cases of v1/v2 folders, prediction input folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from segforge.errors import ConfigError, UsageError
from segforge.io.layouts import case_ids_from_folder, open_raw_dataset, resolve_task
from segforge.testing.synthetic import make_task


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    root = tmp_path / "raw"
    for name in ("Task004_Hippocampus", "Dataset012_Liver", "Task100_Other"):
        (root / name).mkdir(parents=True)
    (root / "notes").mkdir()
    return root


@pytest.mark.parametrize("task", [4, "4", "004", "Task004_Hippocampus", "Dataset004_Hippocampus"])
def test_resolve_task_forms(raw: Path, task: object) -> None:
    assert resolve_task(task, raw) == raw / "Task004_Hippocampus"


def test_resolve_task_v2_and_default_root(raw: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_task("12", raw) == raw / "Dataset012_Liver"
    monkeypatch.setenv("SEGFORGE_RAW", str(raw))
    assert resolve_task(100) == raw / "Task100_Other"
    assert resolve_task(str(raw / "Task100_Other")) == raw / "Task100_Other"  # a folder given directly


def test_resolve_task_unknown_lists_available(raw: Path) -> None:
    with pytest.raises(UsageError) as info:
        resolve_task(7, raw)
    message = info.value.message
    assert message.startswith(f"no task 7 in {raw}")
    assert "Task004_Hippocampus, Dataset012_Liver, Task100_Other" in message and "notes" not in message
    assert "convert-msd" in info.value.hint and "SEGFORGE_RAW" in info.value.hint
    with pytest.raises(UsageError, match="the folder does not exist"):
        resolve_task(4, raw / "missing")
    with pytest.raises(UsageError, match="is not a task"):
        resolve_task("hippo", raw)


def test_resolve_task_ambiguous_names_both(raw: Path) -> None:
    (raw / "Dataset004_Other").mkdir()
    with pytest.raises(UsageError, match="task 4 is ambiguous .*Dataset004_Other and Task004_Hippocampus"):
        resolve_task("004", raw)
    assert resolve_task("Dataset004_Other", raw) == raw / "Dataset004_Other"  # exact name still works


def test_open_v1_with_training_list(tmp_path: Path) -> None:
    folder = make_task(tmp_path / "Task007_Syn", n_cases=3, channels=2, n_test=1)
    ds = open_raw_dataset(folder)
    assert (ds.name, ds.task_id, ds.num_channels, ds.file_ending) == ("Task007_Syn", 7, 2, ".nii.gz")
    assert [c.case_id for c in ds.cases] == ["case_000", "case_001", "case_002"]
    first = ds.cases[0]
    assert first.images == [folder / "imagesTr/case_000_0000.nii.gz", folder / "imagesTr/case_000_0001.nii.gz"]
    assert first.label == folder / "labelsTr/case_000.nii.gz"
    assert [(c.case_id, c.label) for c in ds.test_cases] == [("case_003", None)]
    assert ds.test_cases[0].images[1] == folder / "imagesTs/case_003_0001.nii.gz"


def test_open_v2_and_v1_without_training_list_use_folders(tmp_path: Path) -> None:
    v2 = open_raw_dataset(make_task(tmp_path / "Dataset003_V2", n_cases=2, layout="v2", n_test=1))
    assert v2.dataset_json.is_v2 and [c.case_id for c in v2.cases] == ["case_000", "case_001"]
    assert v2.cases[1].label == tmp_path / "Dataset003_V2/labelsTr/case_001.nii.gz"
    assert [c.case_id for c in v2.test_cases] == ["case_002"]
    folder = make_task(tmp_path / "Task005_NoList", n_cases=2)
    info = json.loads((folder / "dataset.json").read_text())
    del info["training"]
    (folder / "dataset.json").write_text(json.dumps(info))
    (folder / "imagesTr" / "._case_000_0000.nii.gz").write_bytes(b"mac")  # hidden files are ignored
    assert [c.case_id for c in open_raw_dataset(folder).cases] == ["case_000", "case_001"]


@pytest.mark.parametrize("entry", ["../elsewhere/x.nii.gz", "/abs/x.nii.gz", "./imagesTr/../../x.nii.gz"])
def test_paths_escaping_the_dataset_are_refused(tmp_path: Path, entry: str) -> None:
    folder = make_task(tmp_path / "Task006_Esc", n_cases=1)
    info = json.loads((folder / "dataset.json").read_text())
    info["training"][0]["label"] = entry
    (folder / "dataset.json").write_text(json.dumps(info))
    with pytest.raises(ConfigError, match=r"training\[0\]\.label path .* points outside the dataset folder"):
        open_raw_dataset(folder)


def test_missing_dataset_json(tmp_path: Path) -> None:
    (tmp_path / "Task001_X").mkdir()
    with pytest.raises(ConfigError, match=r"Task001_X/dataset\.json: file not found") as info:
        open_raw_dataset(tmp_path / "Task001_X")
    assert "convert-msd" in info.value.hint


def test_case_ids_from_folder(tmp_path: Path) -> None:
    for name in ("b_0000.nii.gz", "b_0001.nii.gz", "a_0000.nii.gz", "a_0001.nii.gz", ".a_0002.nii.gz", "x.txt"):
        (tmp_path / name).write_bytes(b"")
    assert case_ids_from_folder(tmp_path, ".nii.gz", 2) == ["a", "b"]
    (tmp_path / "b_0001.nii.gz").unlink()
    with pytest.raises(UsageError, match=r"case 'b' .* is missing channel 1: b_0001\.nii\.gz"):
        case_ids_from_folder(tmp_path, ".nii.gz", 2)
    with pytest.raises(UsageError, match=r"has channel file a_0001\.nii\.gz but the model expects 1"):
        case_ids_from_folder(tmp_path, ".nii.gz", 1)


def test_case_ids_from_folder_without_channel_suffix(tmp_path: Path) -> None:
    (tmp_path / "scan.nii.gz").write_bytes(b"")
    with pytest.raises(UsageError, match=r"no images named CASE_0000\.nii\.gz .*without a _0000 channel suffix"):
        case_ids_from_folder(tmp_path, ".nii.gz", 1)
