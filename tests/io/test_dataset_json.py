"""dataset.json in nnU-Net v1/MSD and v2 form: the normalized view and one-line validation errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from segforge.config.dataset import DatasetJson, load_dataset_json
from segforge.errors import ConfigError

V1 = {
    "name": "Hippocampus",
    "reference": "somewhere",
    "tensorImageSize": "3D",
    "modality": {"0": "MRI"},
    "labels": {"0": "background", "1": "Anterior", "2": "Posterior"},
    "numTraining": 1,
    "numTest": 0,
    "training": [{"image": "./imagesTr/h_001.nii.gz", "label": "./labelsTr/h_001.nii.gz"}],
    "test": [],
}
V2 = {
    "channel_names": {"0": "T2", "1": "ADC"},
    "labels": {"background": 0, "whole": [1, 2, 3], "core": [2, 3], "enhancing": 3, "edema": 1, "necrosis": 2},
    "numTraining": 4,
    "file_ending": ".nrrd",
    "regions_class_order": [1, 2, 3],
}


def _load(tmp_path: Path, data: object) -> DatasetJson:
    path = tmp_path / "dataset.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return load_dataset_json(path)


def test_v1_normalized_view(tmp_path: Path) -> None:
    dj = _load(tmp_path, V1)
    assert not dj.is_v2
    assert dj.channel_names() == {0: "MRI"}
    assert dj.label_values() == {"background": 0, "Anterior": 1, "Posterior": 2}
    assert dj.file_ending == ".nii.gz" and dj.num_training == 1 and dj.ignore_label is None
    assert dj.training[0].image == "./imagesTr/h_001.nii.gz"


def test_v2_normalized_view_keeps_regions(tmp_path: Path) -> None:
    dj = _load(tmp_path, V2)
    assert dj.is_v2 and dj.num_channels == 2 and dj.file_ending == ".nrrd"
    assert dj.channel_names() == {0: "T2", 1: "ADC"}
    assert dj.label_values() == {"background": 0, "edema": 1, "necrosis": 2, "enhancing": 3}
    assert dj.regions() == {"whole": (1, 2, 3), "core": (2, 3)} and dj.regions_class_order == [1, 2, 3]
    assert dj.allowed_label_values() == {0, 1, 2, 3}


def test_ignore_label(tmp_path: Path) -> None:
    dj = _load(tmp_path, {"channel_names": {"0": "CT"}, "labels": {"background": 0, "a": 1, "ignore": 2},
                          "numTraining": 1, "file_ending": ".nii.gz"})  # fmt: skip
    assert dj.ignore_label == 2


def test_save_writes_v1_and_round_trips(tmp_path: Path) -> None:
    dj = _load(tmp_path, V1)
    dj.save(tmp_path / "out.json")
    written = json.loads((tmp_path / "out.json").read_text())
    assert written["modality"] == {"0": "MRI"} and written["labels"]["2"] == "Posterior"
    assert written["reference"] == "somewhere" and written["training"] == V1["training"]
    assert load_dataset_json(tmp_path / "out.json").label_values() == dj.label_values()


def test_v2_labels_saved_as_v1(tmp_path: Path) -> None:
    dj = _load(tmp_path, {"channel_names": {"0": "CT"}, "labels": {"background": 0, "liver": 1},
                          "numTraining": 0, "file_ending": ".nii.gz"})  # fmt: skip
    assert dj.to_v1_dict()["labels"] == {"0": "background", "1": "liver"}
    with pytest.raises(ConfigError, match="region labels"):
        _load(tmp_path, V2).to_v1_dict()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"numTraining": None}, r"dataset\.json: numTraining: Field required"),
        ({"labels": None}, r"labels: Field required"),
        ({"modality": None}, r"missing 'channel_names' \(nnU-Net v2\) or 'modality'"),
        ({"numTraining": "1"}, r"numTraining: Input should be a valid integer"),
        ({"labels": ["background"]}, r"labels: Input should be a valid dictionary"),
        ({"labels": {"0": "background", "2": "b"}}, r"labels: .*consecutive 0\.\.2; missing \[1\]"),
        ({"labels": {"1": "a", "2": "b"}}, r"labels: .*must include background with value 0"),
        ({"labels": {"0": "background", "1": "a", "2": "a"}}, r"label name 'a' is used for more than one value"),
        ({"labels": {"0": "background", "x": "a"}}, r"labels key 'x' is not a non-negative integer"),
        ({"modality": {}}, r"modality: .*modality is empty"),
        ({"modality": {"1": "MRI"}}, r"modality keys must be 0\.\.0"),
        ({"file_ending": "nii.gz"}, r"file_ending must start with '\.'"),
        ({"training": [{"image": "a"}]}, r"training\.0\.label: Field required"),
    ],
)
def test_v1_validation_errors_are_one_line(tmp_path: Path, change: dict, expected: str) -> None:
    data = {**V1, **change}
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(ConfigError, match=expected) as info:
        _load(tmp_path, data)
    assert info.value.message.startswith(str(tmp_path / "dataset.json"))
    assert "\n" not in info.value.message and "dataset.json" in info.value.hint


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"background": 1, "a": 0}, "label 'background' must have value 0, got 1"),
        ({"background": 0, "a": 1, "b": 1}, "labels 'a' and 'b' have the same value 1"),
        ({"background": 0, "a": 2}, r"consecutive 0\.\.2; missing \[1\]"),
        ({"background": 0, "a": "one"}, "mixes v1 style"),
    ],
)
def test_v2_label_errors(tmp_path: Path, labels: dict, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        _load(tmp_path, {**V2, "labels": labels})


def test_invalid_json_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"dataset\.json: not valid JSON \(line 1"):
        _load(tmp_path, "{not json")
    with pytest.raises(ConfigError, match="file not found"):
        load_dataset_json(tmp_path / "nothing" / "dataset.json")


def test_real_hippocampus_dataset_json(hippocampus_msd: Path) -> None:
    dj = load_dataset_json(hippocampus_msd)
    assert dj.label_values() == {"background": 0, "Anterior": 1, "Posterior": 2}
    assert dj.channel_names() == {0: "MRI"} and dj.num_training == len(dj.training) == 200
