"""Paths from dataset.json cannot leave the dataset folder; case ids never carry a path separator.

A downloaded dataset.json is data: an entry like ``../../home/x`` or ``/etc/...`` must be
refused with a one-line error naming the entry, before any file outside is opened.
Symbolic links inside the dataset folder are followed on purpose (link farms of shared data).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from segforge.errors import ConfigError
from segforge.io.layouts import open_raw_dataset

DATASET = "Task015_Escape"

ESCAPES = [
    "../outside/case_000.nii.gz",
    "./imagesTr/../../outside/case_000.nii.gz",
    "imagesTr/sub/../../../outside/case_000.nii.gz",
    "..\\outside\\case_000.nii.gz",
    "C:\\data\\case_000.nii.gz",
    "c:/data/case_000.nii.gz",
    "//server/share/case_000.nii.gz",
]


@pytest.fixture
def dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A valid v1 task, plus a readable image *outside* it that an escaping entry would reach."""
    from segforge.testing.synthetic import make_task

    folder = make_task(tmp_path / "raw" / DATASET, n_cases=3, seed=1)
    outside = tmp_path / "raw" / "outside"
    outside.mkdir()
    for name in ("case_000_0000.nii.gz", "case_000.nii.gz"):
        (outside / name).write_bytes((folder / "imagesTr" / "case_000_0000.nii.gz").read_bytes())
    monkeypatch.setenv("SEGFORGE_RAW", str(tmp_path / "raw"))
    monkeypatch.setenv("SEGFORGE_PREPROCESSED", str(tmp_path / "pre"))
    return folder


def edit(folder: Path, change) -> None:
    path = folder / "dataset.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def one_line_refusal(folder: Path, field: str) -> str:
    with pytest.raises(ConfigError) as info:
        open_raw_dataset(folder)
    message = info.value.message
    assert message.startswith(str(folder / "dataset.json")) and f"{field} path" in message
    assert "\n" not in message and "relative to the dataset folder" in (info.value.hint or "")
    return message


@pytest.mark.parametrize("entry", ESCAPES)
@pytest.mark.parametrize("key", ["image", "label"])
def test_training_entry_outside_the_dataset_is_refused(dataset: Path, entry: str, key: str):
    edit(dataset, lambda d: d["training"][1].update({key: entry}))
    assert "points outside the dataset folder" in one_line_refusal(dataset, f"training[1].{key}")


def test_absolute_path_to_a_real_file_is_refused(dataset: Path):
    target = dataset.parent / "outside" / "case_000.nii.gz"
    assert target.is_file()
    edit(dataset, lambda d: d["training"][0].update(image=str(target)))
    assert f"'{target}' points outside" in one_line_refusal(dataset, "training[0].image")


@pytest.mark.parametrize("entry", ["../outside/case_000.nii.gz", "/tmp/case_000.nii.gz"])
def test_test_entry_outside_the_dataset_is_refused(dataset: Path, entry: str):
    edit(dataset, lambda d: d.update(test=[entry], numTest=1))
    one_line_refusal(dataset, "test[0]")


def test_control_characters_in_an_entry_are_refused(dataset: Path):
    edit(dataset, lambda d: d["training"][0].update(image="./imagesTr/case\x00_000.nii.gz"))
    assert "contains a control character" in one_line_refusal(dataset, "training[0].image")


def test_entries_inside_the_folder_still_work(dataset: Path):
    (dataset / "imagesTr" / "sub").mkdir()
    (dataset / "imagesTr" / "case_000_0000.nii.gz").rename(dataset / "imagesTr" / "sub" / "case_000_0000.nii.gz")
    edit(dataset, lambda d: d["training"][0].update(image="imagesTr/sub/./case_000.nii.gz"))
    raw = open_raw_dataset(dataset)
    assert raw.cases[0].images == [dataset / "imagesTr" / "sub" / "case_000_0000.nii.gz"]
    assert [c.case_id for c in raw.cases] == ["case_000", "case_001", "case_002"]


def test_case_ids_from_entries_and_listings_are_plain_names(dataset: Path):
    """A case id becomes output file names (CASE.npy, CASE.nii.gz): it must never hold a separator."""
    edit(dataset, lambda d: d["training"][0].update(image="./imagesTr/sub\\case_000.nii.gz"))
    (dataset / "imagesTr" / "sub").mkdir()
    (dataset / "imagesTr" / "case_000_0000.nii.gz").rename(dataset / "imagesTr" / "sub" / "case_000_0000.nii.gz")
    raw = open_raw_dataset(dataset)
    ids = [c.case_id for c in raw.cases]
    assert ids == ["case_000", "case_001", "case_002"]
    assert all("/" not in i and "\\" not in i and i not in (".", "..") for i in ids)


@pytest.mark.parametrize("command", [["verify"], ["plan-and-preprocess", "-np", "1"]])
def test_commands_stop_with_one_line_before_reading_outside(dataset: Path, command: list[str], capsys):
    from segforge import plugins
    from segforge.cli.app import main

    edit(dataset, lambda d: d["training"][0].update(image="../outside/case_000.nii.gz"))
    plugins.reset_manager()
    with pytest.raises(SystemExit) as info:
        main([command[0], "--task", "15", *command[1:]])
    err = capsys.readouterr().err
    assert info.value.code != 0 and "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "training[0].image path '../outside/case_000.nii.gz' points outside" in lines[0]
    assert not (dataset.parent.parent / "pre").exists() or not any((dataset.parent.parent / "pre").rglob("*.npy"))
