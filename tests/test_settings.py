"""The three data folders: segforge variables, nnU-Net v1 fallbacks, the ./segforge_data default."""

from __future__ import annotations

from pathlib import Path

import pytest

from segforge.settings import FOLDER_VARIABLES, get_folders


def test_default_is_segforge_data_in_the_current_directory(tmp_path):
    folders = get_folders(environ={}, cwd=tmp_path)
    assert folders.raw.path == tmp_path / "segforge_data" / "raw"
    assert folders.preprocessed.path == tmp_path / "segforge_data" / "preprocessed"
    assert folders.results.path == tmp_path / "segforge_data" / "results"
    assert {folders.raw.source, folders.preprocessed.source, folders.results.source} == {"default"}


def test_segforge_variables(tmp_path):
    env = {
        "SEGFORGE_RAW": str(tmp_path / "r"),
        "SEGFORGE_PREPROCESSED": str(tmp_path / "p"),
        "SEGFORGE_RESULTS": str(tmp_path / "x"),
    }
    folders = get_folders(environ=env, cwd=Path("/elsewhere"))
    assert (folders.raw.path, folders.raw.source) == (tmp_path / "r", "SEGFORGE_RAW")
    assert (folders.preprocessed.path, folders.preprocessed.source) == (tmp_path / "p", "SEGFORGE_PREPROCESSED")
    assert (folders.results.path, folders.results.source) == (tmp_path / "x", "SEGFORGE_RESULTS")


@pytest.mark.parametrize("existing", [True, False])
def test_nnunet_v1_fallbacks(tmp_path, existing):
    base = tmp_path / "nnunet_base"
    if existing:
        (base / "nnUNet_raw_data").mkdir(parents=True)
    env = {
        "nnUNet_raw_data_base": str(base),
        "nnUNet_preprocessed": str(tmp_path / "pre"),
        "RESULTS_FOLDER": str(tmp_path / "res"),
    }
    folders = get_folders(environ=env, cwd=tmp_path)
    # nnU-Net v1 keeps Task folders in <base>/nnUNet_raw_data, whether or not it exists yet
    assert (folders.raw.path, folders.raw.source) == (base / "nnUNet_raw_data", "nnUNet_raw_data_base")
    assert (folders.preprocessed.path, folders.preprocessed.source) == (tmp_path / "pre", "nnUNet_preprocessed")
    assert (folders.results.path, folders.results.source) == (tmp_path / "res", "RESULTS_FOLDER")


def test_segforge_variable_wins_over_nnunet_fallback(tmp_path):
    env = {"SEGFORGE_RESULTS": str(tmp_path / "ours"), "RESULTS_FOLDER": str(tmp_path / "theirs")}
    folders = get_folders(environ=env, cwd=tmp_path)
    assert (folders.results.path, folders.results.source) == (tmp_path / "ours", "SEGFORGE_RESULTS")
    assert folders.raw.source == "default"


def test_relative_blank_and_home_values(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    env = {"SEGFORGE_RAW": "data/raw", "SEGFORGE_PREPROCESSED": "   ", "SEGFORGE_RESULTS": "~/results"}
    folders = get_folders(environ=env, cwd=tmp_path)
    assert folders.raw.path == tmp_path / "data" / "raw"  # relative to the working directory
    assert folders.preprocessed.source == "default"  # a blank variable counts as unset
    assert folders.results.path == tmp_path / "home" / "results"


def test_reads_the_environment_and_cwd_at_call_time(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert get_folders().raw.path == tmp_path / "segforge_data" / "raw"
    monkeypatch.setenv("SEGFORGE_RAW", str(tmp_path / "later"))
    assert get_folders() == get_folders(environ={"SEGFORGE_RAW": str(tmp_path / "later")})
    assert get_folders().raw.path == tmp_path / "later"


def test_as_dict_lists_every_folder_with_its_source(tmp_path):
    folders = get_folders(environ={"SEGFORGE_RAW": str(tmp_path)}, cwd=tmp_path)
    assert list(folders.as_dict()) == list(FOLDER_VARIABLES) == ["raw", "preprocessed", "results"]
    assert folders.as_dict()["raw"] == {"path": str(tmp_path), "source": "SEGFORGE_RAW"}
    assert folders.as_dict()["results"]["source"] == "default"
