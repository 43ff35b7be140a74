"""Fingerprint extraction on a hand-made dataset with known geometry, labels and intensities."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from segforge.config.fingerprint import Fingerprint
from segforge.errors import ConfigError
from segforge.io.layouts import open_raw_dataset
from segforge.planning import intensity
from segforge.planning.fingerprint import ensure_fingerprint, extract_fingerprint, fingerprint_path, load_fingerprint


def _write(array: np.ndarray, spacing_zyx: tuple[float, ...], path: Path) -> None:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing([float(s) for s in spacing_zyx[::-1]])
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path), True)


def _case_a() -> tuple[np.ndarray, np.ndarray]:
    """4x6x8 voxels; nonzero box [1:3, 1:5, 2:7]; label a (4 voxels at 100), label b (3 voxels at 200)."""
    image = np.zeros((4, 6, 8), np.float32)
    seg = np.zeros((4, 6, 8), np.uint8)
    image[1:3, 1:5, 2:7] = 10
    image[1, 2:4, 3:5], seg[1, 2:4, 3:5] = 100, 1
    image[2, 2, 3:6], seg[2, 2, 3:6] = 200, 2
    return image, seg


def _case_b() -> tuple[np.ndarray, np.ndarray]:
    """3x5x5 voxels, all nonzero (7), one voxel of label a at 50."""
    image = np.full((3, 5, 5), 7, np.float32)
    seg = np.zeros((3, 5, 5), np.uint8)
    image[0, 0, 0], seg[0, 0, 0] = 50, 1
    return image, seg


def make_known_task(root: Path) -> Path:
    folder = root / "Task077_Known"
    for case_id, (image, seg), spacing in (
        ("case_a", _case_a(), (3.0, 1.0, 0.5)),
        ("case_b", _case_b(), (2.0, 1.0, 1.0)),
    ):
        _write(image, spacing, folder / "imagesTr" / f"{case_id}_0000.nii.gz")
        _write(seg, spacing, folder / "labelsTr" / f"{case_id}.nii.gz")
    info = {
        "name": "Known",
        "modality": {"0": "MRI"},
        "labels": {"0": "background", "1": "a", "2": "b"},
        "numTraining": 2,
        "training": [
            {"image": f"./imagesTr/{c}.nii.gz", "label": f"./labelsTr/{c}.nii.gz"} for c in ("case_a", "case_b")
        ],
    }
    (folder / "dataset.json").write_text(json.dumps(info))
    return folder


@pytest.fixture
def known(tmp_path: Path) -> Path:
    return make_known_task(tmp_path / "raw")


def test_geometry_and_label_counts(known: Path):
    fp = extract_fingerprint(open_raw_dataset(known), num_processes=1, show_progress=False)
    a, b = fp.cases
    assert (a.case_id, b.case_id) == ("case_a", "case_b")
    assert fp.spacings == [[3.0, 1.0, 0.5], [2.0, 1.0, 1.0]]
    assert a.shape_before_crop == [4, 6, 8] and a.shape_after_crop == [2, 4, 5]
    assert b.shape_before_crop == b.shape_after_crop == [3, 5, 5]
    assert a.class_voxels == {"background": 185, "a": 4, "b": 3}
    assert b.class_voxels == {"background": 74, "a": 1}
    assert fp.class_voxels() == {"background": 259, "a": 5, "b": 3}
    assert fp.median_relative_size_after_cropping == pytest.approx((40 / 192 + 1.0) / 2)
    assert fp.channel_names == {"0": "MRI"} and fp.labels == {"background": 0, "a": 1, "b": 2}
    assert fp.image_io == "simpleitk" and fp.dataset_name == "Task077_Known"


def test_intensity_statistics_follow_nnunets_sampling(known: Path, monkeypatch):
    monkeypatch.setattr(intensity, "TOTAL_FOREGROUND_SAMPLES", 1000)
    fp = extract_fingerprint(open_raw_dataset(known), num_processes=1, show_progress=False)
    assert fp.samples_per_case == 500
    # nnU-Net: per case RandomState(1234).choice over the cropped foreground voxels (C order), pooled
    draws = []
    for image, seg, box in ((*_case_a(), np.s_[1:3, 1:5, 2:7]), (*_case_b(), np.s_[:, :, :])):
        fg = image[box][seg[box] > 0]
        draws.append(np.random.RandomState(1234).choice(fg, 500, replace=True))
    pooled = np.concatenate(draws).astype(np.float64)
    stats = fp.foreground_intensity_properties_per_channel["0"]
    assert (stats.min, stats.max) == (50.0, 200.0)
    assert stats.mean == pytest.approx(pooled.mean(), rel=1e-12)
    assert stats.std == pytest.approx(pooled.std(), rel=1e-12)
    expected = np.percentile(pooled, (0.5, 50.0, 99.5))
    assert [stats.percentile_00_5, stats.median, stats.percentile_99_5] == pytest.approx(list(expected))


def test_parallel_extraction_equals_serial(known: Path, monkeypatch):
    monkeypatch.setattr(intensity, "TOTAL_FOREGROUND_SAMPLES", 1000)
    ds = open_raw_dataset(known)
    serial = extract_fingerprint(ds, num_processes=1, show_progress=False)
    parallel = extract_fingerprint(ds, num_processes=2, show_progress=False)
    assert serial == parallel


def test_written_once_then_reused_until_raw_files_change(known: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(intensity, "TOTAL_FOREGROUND_SAMPLES", 1000)
    ds = open_raw_dataset(known)
    root = tmp_path / "pre"
    first, reused = ensure_fingerprint(ds, root, num_processes=1, show_progress=False)
    path = fingerprint_path(ds.name, root)
    assert not reused and path == root / "Task077_Known" / "fingerprint.json"
    assert load_fingerprint(path) == first
    again, reused = ensure_fingerprint(ds, root, num_processes=1, show_progress=False)
    assert reused and again == first
    _, reused = ensure_fingerprint(ds, root, num_processes=1, overwrite=True, show_progress=False)
    assert not reused
    label = known / "labelsTr" / "case_b.nii.gz"
    os.utime(label, ns=(label.stat().st_atime_ns, label.stat().st_mtime_ns + 10**9))
    changed, reused = ensure_fingerprint(ds, root, num_processes=1, show_progress=False)
    assert not reused and changed.raw_digest != first.raw_digest
    assert not list(path.parent.glob(".*.tmp"))


def test_broken_fingerprint_file_is_recomputed(known: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(intensity, "TOTAL_FOREGROUND_SAMPLES", 1000)
    ds = open_raw_dataset(known)
    path = fingerprint_path(ds.name, tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    fp, reused = ensure_fingerprint(ds, tmp_path, num_processes=1, show_progress=False)
    assert not reused and isinstance(load_fingerprint(path), Fingerprint) and fp.num_cases == 2


def test_label_with_other_shape_is_a_one_line_error(known: Path):
    _write(np.zeros((4, 6, 9), np.uint8), (3.0, 1.0, 0.5), known / "labelsTr" / "case_a.nii.gz")
    with pytest.raises(ConfigError) as info:
        extract_fingerprint(open_raw_dataset(known), num_processes=1, show_progress=False)
    assert "case_a.nii.gz: label shape [4, 6, 9] differs from image shape [4, 6, 8]" in info.value.message
    assert "\n" not in info.value.message and "segforge verify" in info.value.hint


def test_missing_file_is_named(known: Path):
    (known / "labelsTr" / "case_b.nii.gz").unlink()
    with pytest.raises(ConfigError, match=r"case_b\.nii\.gz: file not found \(listed for case 'case_b'\)"):
        extract_fingerprint(open_raw_dataset(known), num_processes=1, show_progress=False)
