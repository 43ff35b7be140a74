"""The preprocessed-case format: round trip, memory mapping, no pickle, completeness and atomicity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from segforge.data import case_store
from segforge.data.case_store import (
    CaseProperties,
    case_is_complete,
    list_complete_cases,
    read_case,
    read_class_locations,
    remove_temporaries,
    write_case,
)
from segforge.errors import ConfigError
from segforge.io.image_io import ImageProperties


def props(case_id: str = "case_000", digest: str = "d1", shape=(4, 5, 6), has_seg: bool = True) -> CaseProperties:
    image = ImageProperties(
        spacing=(2.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0), direction=(1, 0, 0, 0, 1, 0, 0, 0, 1),
        shape=(6, 7, 8), itk_spacing=(1.0, 1.0, 2.0),
    )  # fmt: skip
    return CaseProperties(
        case_id=case_id, digest=digest, preprocessing_version="1", data_identifier="segforgePlans_3d_fullres",
        image=image, transpose_forward=[0, 1, 2], original_spacing=[2.0, 1.0, 1.0], shape_before_cropping=[6, 7, 8],
        bbox=[(1, 5), (1, 6), (1, 7)], shape_after_cropping=[4, 5, 6], spacing=[2.0, 1.0, 1.0],
        shape_after_resampling=list(shape), num_channels=2, has_seg=has_seg, class_location_counts={"1": 2},
    )  # fmt: skip


def arrays(shape=(4, 5, 6)) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]:
    data = np.random.default_rng(0).normal(size=(2, *shape)).astype(np.float32)
    seg = np.zeros((1, *shape), dtype=np.int8)
    seg[0, 1, 1, 1:3] = 1
    seg[0, 0] = -1
    return data, seg, {1: np.array([[1, 1, 1], [1, 1, 2]]), 2: np.empty((0, 3))}


def test_round_trip_memory_mapped(tmp_path: Path) -> None:
    data, seg, locs = arrays()
    write_case(tmp_path, "case_000", data, seg, props(), locs)
    got_data, got_seg, got_props = read_case(tmp_path, "case_000")
    assert isinstance(got_data, np.memmap) and not got_data.flags.writeable
    np.testing.assert_array_equal(got_data, data)
    np.testing.assert_array_equal(got_seg, seg)
    assert got_data.dtype == np.float32 and got_seg.dtype == np.int8
    assert got_props == props()
    loaded = read_class_locations(tmp_path, "case_000")
    assert list(loaded) == [1] and loaded[1].tolist() == [[1, 1, 1], [1, 1, 2]]
    in_memory, _, _ = read_case(tmp_path, "case_000", mmap=False)
    assert not isinstance(in_memory, np.memmap)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "case_000.json", "case_000.npy", "case_000_locs.npy", "case_000_seg.npy",
    ]  # fmt: skip


def test_files_load_without_pickle(tmp_path: Path) -> None:
    data, seg, locs = arrays()
    write_case(tmp_path, "case_000", data, seg, props(), locs)
    for name in ("case_000.npy", "case_000_seg.npy", "case_000_locs.npy"):
        array = np.load(tmp_path / name, allow_pickle=False)
        assert array.dtype != object
    assert (tmp_path / "case_000.json").read_text().lstrip().startswith("{")


def test_case_without_label(tmp_path: Path) -> None:
    data, _, _ = arrays()
    write_case(tmp_path, "case_000", data, None, props(has_seg=False))
    got_data, got_seg, got_props = read_case(tmp_path, "case_000")
    assert got_seg is None and not got_props.has_seg
    assert read_class_locations(tmp_path, "case_000") == {}
    assert case_is_complete(tmp_path, "case_000", "d1")


def test_arrays_without_json_are_not_complete(tmp_path: Path) -> None:
    data, seg, locs = arrays()
    write_case(tmp_path, "case_000", data, seg, props(), locs)
    write_case(tmp_path, "case_001", data, seg, props("case_001"), locs)
    (tmp_path / "case_001.json").unlink()  # as if killed before the JSON was written
    assert list_complete_cases(tmp_path, "d1") == ["case_000"]


def test_stale_digest_and_truncated_arrays_are_not_complete(tmp_path: Path) -> None:
    data, seg, locs = arrays()
    write_case(tmp_path, "case_000", data, seg, props(), locs)
    assert list_complete_cases(tmp_path, "d2") == []
    (tmp_path / "case_000.npy").write_bytes(b"")  # what a power loss can leave behind
    assert list_complete_cases(tmp_path, "d1") == []


def test_rewrite_removes_old_json_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, seg, locs = arrays()
    write_case(tmp_path, "case_000", data, seg, props(), locs)
    original = case_store._save_npy

    def crash_on_seg(path: Path, array: np.ndarray) -> None:
        if path.name.endswith("_seg.npy"):
            raise KeyboardInterrupt
        original(path, array)

    monkeypatch.setattr(case_store, "_save_npy", crash_on_seg)
    with pytest.raises(KeyboardInterrupt):
        write_case(tmp_path, "case_000", data + 1, seg, props(), locs)
    assert not case_is_complete(tmp_path, "case_000", "d1")  # new data, old seg: must be redone
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temporaries left


def test_read_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"case_000\.json: file not found"):
        read_case(tmp_path, "case_000")
    data, seg, locs = arrays()
    write_case(tmp_path, "case_000", data, seg, props(shape=(4, 5, 7)), locs)
    with pytest.raises(ConfigError, match=r"case_000\.npy: shape \[2, 4, 5, 6\] does not match its JSON"):
        read_case(tmp_path, "case_000")


def test_remove_temporaries(tmp_path: Path) -> None:
    (tmp_path / ".case_000.npy.abc123.tmp").write_bytes(b"x")
    (tmp_path / "case_000.npy").write_bytes(b"x")
    assert remove_temporaries(tmp_path) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["case_000.npy"]
