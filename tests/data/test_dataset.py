"""PreprocessedDataset: lazy memory-mapped cases, class-location index, clear errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from segforge_data_cases import write_synthetic_case

from segforge.data.case_store import locations_file, seg_file
from segforge.data.dataset import PreprocessedDataset
from segforge.errors import ConfigError


def test_missing_case_is_one_line_error_naming_folder_and_ids(synthetic_folder: Path):
    with pytest.raises(ConfigError) as info:
        PreprocessedDataset(synthetic_folder, ["case_000", "nope_1", "nope_2"])
    msg = str(info.value)
    assert "\n" not in msg
    assert str(synthetic_folder) in msg and "2 case(s) not preprocessed: nope_1, nope_2" in msg
    assert "segforge preprocess" in info.value.hint


def test_missing_folder_and_empty_ids(tmp_path: Path, synthetic_folder: Path):
    with pytest.raises(ConfigError, match="preprocessed folder not found"):
        PreprocessedDataset(tmp_path / "absent", ["a"])
    with pytest.raises(ConfigError, match="no case ids"):
        PreprocessedDataset(synthetic_folder, [])


def test_cases_are_memory_mapped_and_opened_once(synthetic_folder: Path):
    ds = PreprocessedDataset(synthetic_folder, ["case_000", "case_001"])
    assert ds._cases == {}  # nothing opened before use
    case = ds.load("case_000")
    assert isinstance(case.data, np.memmap) and isinstance(case.seg, np.memmap)
    assert case.data.shape == (1, 20, 24, 18) and case.seg.shape == (1, 20, 24, 18)
    assert ds.load("case_000") is case
    with pytest.raises(KeyError, match="case_005"):
        ds.load("case_005")


def test_class_location_index_matches_the_label_map(synthetic_folder: Path):
    ds = PreprocessedDataset(synthetic_folder, ["case_002"])
    locs = ds.class_locations("case_002")
    seg = np.asarray(ds.load("case_002").seg[0])
    assert locs.labels == [1, 2]
    assert locs.index[1][1] == int((seg == 1).sum()) == 8 and locs.index[2][1] == 1
    for label in (1, 2):
        for k in range(locs.index[label][1]):
            assert seg[tuple(locs.voxel(label, k))] == label
    with pytest.raises(IndexError):
        locs.voxel(2, 1)


def test_case_without_foreground_has_no_locations(tmp_path: Path):
    data = np.zeros((1, 6, 6, 6), np.float32)
    seg = np.zeros((1, 6, 6, 6), np.int8)
    write_synthetic_case(tmp_path, "empty", data, seg)
    assert PreprocessedDataset(tmp_path, ["empty"]).class_locations("empty").labels == []


def test_broken_locations_file_is_a_config_error(synthetic_folder: Path):
    np.save(locations_file(synthetic_folder, "case_001"), np.zeros((3, 2), np.int32))
    ds = PreprocessedDataset(synthetic_folder, ["case_001"])
    with pytest.raises(ConfigError, match=r"case_001_locs.npy: shape \[3, 2\], expected \[N, 4\]"):
        ds.class_locations("case_001")


def test_case_without_seg_cannot_be_trained_on(synthetic_folder: Path):
    ds = PreprocessedDataset(synthetic_folder, ["case_001"])
    seg_file(synthetic_folder, "case_001").unlink()
    with pytest.raises(ConfigError, match="case_001_seg.npy: file not found"):
        ds.load("case_001")


def test_pickling_drops_open_maps(synthetic_folder: Path):
    ds = PreprocessedDataset(synthetic_folder, ["case_000"])
    ds.load("case_000")
    ds.class_locations("case_000")
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._cases == {} and clone._locations == {}
    assert len(pickle.dumps(ds)) < 2000  # the arrays are not copied into the pickle
    np.testing.assert_array_equal(clone.load("case_000").data, ds.load("case_000").data)
