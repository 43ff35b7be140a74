"""Averaging probability folders: hand-computed argmax, exact geometry, one-line errors, --continue."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from segforge_ensemble_cases import GEOMETRY, IO, write_probs

from segforge.ensembling import ensemble_folders
from segforge.ensembling.averaging import segmentation_from
from segforge.errors import ConfigError, UsageError
from segforge.inference.export import read_probabilities


def two_folders(tmp_path: Path) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    """Folders a/ and b/ with case c1; voxels chosen so the mean's argmax differs from each input's."""
    shape = GEOMETRY.shape
    pa = np.zeros((3, *shape), np.float32)
    pb = np.zeros((3, *shape), np.float32)
    pa[0], pb[0] = 1.0, 1.0  # default: background in both
    # voxel (0,0,0): a says 1 (0.5 vs 2: 0.45), b says 2 (0.6 vs 1: 0.3) -> mean 1: 0.4, 2: 0.525 -> 2
    pa[:, 0, 0, 0], pb[:, 0, 0, 0] = [0.05, 0.5, 0.45], [0.1, 0.3, 0.6]
    # voxel (1,2,3): a says 0 (0.5), b says 1 (0.45) but a's 1 is 0.4 -> mean 0: 0.3, 1: 0.425 -> 1
    pa[:, 1, 2, 3], pb[:, 1, 2, 3] = [0.5, 0.4, 0.1], [0.1, 0.45, 0.45]
    # voxel (2,3,4): both say 2
    pa[:, 2, 3, 4], pb[:, 2, 3, 4] = [0.2, 0.2, 0.6], [0.0, 0.25, 0.75]
    write_probs(tmp_path / "a", "c1", pa)
    write_probs(tmp_path / "b", "c1", pb)
    return tmp_path / "a", tmp_path / "b", pa, pb


def test_mean_argmax_matches_hand_computation_and_geometry_is_exact(tmp_path):
    a, b, pa, pb = two_folders(tmp_path)
    result = ensemble_folders([a, b], tmp_path / "out", image_io=IO)
    assert result.written == [tmp_path / "out" / "c1.nii.gz"] and result.skipped == []
    image = sitk.ReadImage(str(tmp_path / "out" / "c1.nii.gz"))
    seg = sitk.GetArrayFromImage(image)
    expected = np.zeros(GEOMETRY.shape, np.uint8)
    expected[0, 0, 0], expected[1, 2, 3], expected[2, 3, 4] = 2, 1, 2
    np.testing.assert_array_equal(seg, expected)
    assert image.GetSize() == (5, 4, 3)
    assert image.GetSpacing() == pytest.approx(GEOMETRY.itk_spacing)
    assert image.GetOrigin() == pytest.approx(GEOMETRY.origin)
    assert image.GetDirection() == pytest.approx(GEOMETRY.direction)
    assert not (tmp_path / "out" / "c1.npz").exists()  # only with save_probabilities


def test_saved_probabilities_are_the_mean_with_the_inputs_info(tmp_path):
    a, b, pa, pb = two_folders(tmp_path)
    ensemble_folders([a, b], tmp_path / "out", save_probabilities=True, image_io=IO)
    probs, info = read_probabilities(tmp_path / "out" / "c1.npz")
    assert probs.dtype == np.float16 and info.labels == [0, 1, 2] and info.image == GEOMETRY
    assert (info.case_id, info.configuration, info.plans_name) == ("c1", "3d_fullres", "segforgePlans")
    expected = (pa.astype(np.float16).astype(np.float32) + pb.astype(np.float16).astype(np.float32)) / 2
    np.testing.assert_allclose(probs.astype(np.float32), expected, atol=1e-3)
    np.testing.assert_allclose(probs[:, 0, 0, 0].astype(np.float32), [0.075, 0.4, 0.525], atol=1e-3)


def test_label_values_map_channels_and_ties_go_to_the_lower_channel():
    probs = np.array([[[[0.5]]], [[[0.5]]], [[[0.0]]]], np.float32)
    assert segmentation_from(probs, [0, 3, 7]).tolist() == [[[0]]]
    probs[2] = 0.9
    seg = segmentation_from(probs, [0, 3, 300])
    assert seg.dtype == np.uint16 and seg.tolist() == [[[300]]]


def test_region_probabilities_are_thresholded_in_region_order():
    # channels are regions (labels = regions_class_order, no background): sigmoid means, > 0.5 wins, later over earlier
    probs = np.array([[[[0.9, 0.9, 0.4, 0.5]]], [[[0.2, 0.7, 0.9, 0.6]]]], np.float32)
    assert segmentation_from(probs, [1, 2]).tolist() == [[[1, 2, 2, 2]]]
    probs[1] = 0.1
    assert segmentation_from(probs, [1, 2]).tolist() == [[[1, 1, 0, 0]]]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"labels": [0, 1, 3]}, "labels [0, 1, 3] differ from [0, 1, 2]"),
        ({"shape": (3, 4, 6)}, "shape [3, 4, 6] differs from [3, 4, 5]"),
        ({"origin": (0.0, 0.0, 0.0)}, "image origin (0, 0, 0) differs from (-12.5, 4, 100.25)"),
    ],
)
def test_mismatch_is_one_line_error_naming_both_files_and_nothing_is_written(tmp_path, change, message):
    a, b, pa, _ = two_folders(tmp_path)
    write_probs(a, "c0", pa)  # a good case first: it must not be written either
    shape = change.get("shape", GEOMETRY.shape)
    props = GEOMETRY.model_copy(update={k: v for k, v in change.items() if k != "labels"})
    write_probs(b, "c0", np.full((3, *shape), 1 / 3, np.float32), props, labels=change.get("labels", [0, 1, 2]))
    with pytest.raises(ConfigError) as err:
        ensemble_folders([a, b], tmp_path / "out", image_io=IO)
    text = err.value.message
    assert "\n" not in text and message in text
    assert str(b / "c0.json") in text and str(a / "c0.json") in text
    assert err.value.hint
    assert not (tmp_path / "out").exists()


def test_folders_must_hold_the_same_cases(tmp_path):
    a, b, pa, _ = two_folders(tmp_path)
    write_probs(a, "c2", pa)
    with pytest.raises(UsageError, match=r"b lacks c2 \(compared with .*a\)"):
        ensemble_folders([a, b], tmp_path / "out", image_io=IO)
    with pytest.raises(UsageError, match="at least 2 input folders"):
        ensemble_folders([a], tmp_path / "out", image_io=IO)
    with pytest.raises(UsageError, match="is one of the inputs"):
        ensemble_folders([a, b], a, image_io=IO)


def test_continue_skips_finished_cases_and_workers_give_the_same_result(tmp_path):
    a, b, pa, pb = two_folders(tmp_path)
    write_probs(a, "c2", pb)
    write_probs(b, "c2", pa)
    out = tmp_path / "out"
    first = ensemble_folders([a, b], out, num_processes=2, image_io=IO)
    assert sorted(p.name for p in first.written) == ["c1.nii.gz", "c2.nii.gz"]
    seg1 = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "c1.nii.gz")))
    seg2 = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "c2.nii.gz")))
    np.testing.assert_array_equal(seg1, seg2)  # averaging is symmetric
    (out / "c2.nii.gz").unlink()
    again = ensemble_folders([a, b], out, skip_existing=True, image_io=IO)
    assert again.skipped == ["c1"] and [p.name for p in again.written] == ["c2.nii.gz"]
