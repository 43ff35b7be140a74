"""The case preprocessor: crop, normalize with the mask, resample, class locations, transposition, shared data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from segforge.errors import ConfigError
from segforge.io.image_io import ImageProperties, SimpleITKIO
from segforge.preprocessing.preprocessor import CasePreprocessor, preprocess_case, preprocessing_digest


def image_props(shape, spacing=(1.0, 1.0, 1.0)) -> ImageProperties:
    return ImageProperties(
        spacing=tuple(spacing), origin=(0.0, 0.0, 0.0), direction=(1, 0, 0, 0, 1, 0, 0, 0, 1),
        shape=tuple(shape), itk_spacing=tuple(spacing[::-1]),
    )  # fmt: skip


def ball_case(shape=(12, 14, 16), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A nonzero ball in a zero background; label 1 inside it, label 2 a small cube in the middle."""
    grid = np.indices(shape, dtype=np.float32)
    centre = np.array([6.0, 7.0, 8.0]).reshape(3, 1, 1, 1)
    ball = ((grid - centre) ** 2).sum(0) <= 16
    rng = np.random.default_rng(seed)
    data = np.where(ball, rng.normal(200.0, 30.0, shape), 0.0).astype(np.float32)[None]
    seg = np.zeros(shape, dtype=np.uint8)
    seg[ball & (grid[0] >= 6)] = 1
    seg[5:7, 6:8, 7:9] = 2
    return data, seg[None]


def test_crop_mask_normalization_and_locations(make_conf, make_plans) -> None:
    plans = make_plans(make_conf("3d_fullres", [1.0, 1.0, 1.0], use_mask=[True]))
    data, seg = ball_case()
    out = CasePreprocessor(plans, ["3d_fullres"]).run_arrays(data, seg, image_props(data.shape[1:]), "c0")
    case = out["segforgePlans_3d_fullres"]
    p = case.props
    assert p.bbox == [(2, 11), (3, 12), (4, 13)] and p.shape_after_cropping == [9, 9, 9]
    assert p.shape_before_cropping == [12, 14, 16] and p.shape_after_resampling == [9, 9, 9]
    assert case.data.shape == (1, 9, 9, 9) and case.data.dtype == np.float32
    assert case.seg.dtype == np.int8 and set(np.unique(case.seg)) == {-1, 0, 1, 2}
    inside = case.seg[0] >= 0
    assert abs(case.data[0][inside].mean()) < 1e-5 and abs(case.data[0][inside].std() - 1) < 1e-5
    assert (case.data[0][~inside] == 0).all()
    assert p.class_location_counts == {"1": int((case.seg == 1).sum()), "2": 8}
    assert (case.seg[0][tuple(case.class_locations[2].T)] == 2).all()
    assert p.digest == preprocessing_digest(plans, plans.configurations["3d_fullres"])


def test_anisotropic_ct_case_is_resampled_along_z(make_conf, make_plans) -> None:
    plans = make_plans(make_conf("3d_fullres", [2.5, 0.8, 0.8], normalization=["ct"]))
    rng = np.random.default_rng(1)
    data = rng.normal(100.0, 300.0, (1, 10, 24, 20)).astype(np.float32)
    seg = np.zeros((1, 10, 24, 20), dtype=np.uint8)
    seg[0, 4:6, 8:16, 5:15] = 1
    out = CasePreprocessor(plans, ["3d_fullres"]).run_arrays(
        data, seg, image_props((10, 24, 20), (5.0, 0.8, 0.8)), "ct"
    )
    case = out["segforgePlans_3d_fullres"]
    assert case.data.shape == (1, 20, 24, 20) and case.props.spacing == [2.5, 0.8, 0.8]
    # clipped to [-200, 400] and scaled with mean 100 / std 50: the range is [-6, 6]
    assert case.data.min() >= -6.0 - 1e-5 and case.data.max() <= 6.0 + 1e-5
    assert np.isclose(case.data.max(), 6.0, atol=1e-3) and np.isclose(case.data.min(), -6.0, atol=1e-3)
    np.testing.assert_array_equal(case.seg[0], np.repeat(seg[0], 2, axis=0))  # separate z, nearest along z


def test_transpose_forward_moves_axes_and_spacing(make_conf, make_plans) -> None:
    plans = make_plans(make_conf("3d_fullres", [1.0, 2.0, 3.0]), transpose=[2, 0, 1])
    data = np.ones((1, 4, 5, 6), dtype=np.float32)
    props = image_props((4, 5, 6), spacing=(2.0, 3.0, 1.0))
    case = CasePreprocessor(plans, ["3d_fullres"]).run_arrays(data, None, props, "t")["segforgePlans_3d_fullres"]
    assert case.props.original_spacing == [1.0, 2.0, 3.0]
    assert case.props.shape_before_cropping == [6, 4, 5] and case.data.shape == (1, 6, 4, 5)
    assert case.seg is None and not case.props.has_seg


def test_2d_spacing_keeps_slice_spacing_and_schemes_do_not_leak(make_conf, make_plans) -> None:
    plans = make_plans(
        make_conf("3d_fullres", [1.0, 1.0, 1.0], normalization=["zscore"]),
        make_conf("2d", [0.5, 1.0], normalization=["none"]),
    )
    data, seg = ball_case()
    out = CasePreprocessor(plans, ["3d_fullres", "2d"]).run_arrays(data, seg, image_props(data.shape[1:]), "c")
    two_d = out["segforgePlans_2d"]
    assert two_d.props.spacing == [1.0, 0.5, 1.0] and two_d.data.shape == (1, 9, 18, 9)
    # 'none' must see the raw values even though 'zscore' ran first on the same case
    assert two_d.data.max() > 100 and abs(out["segforgePlans_3d_fullres"].data.mean()) < 1e-5


def test_shared_data_identifier(make_conf, make_plans) -> None:
    fullres = make_conf("3d_fullres", [1.0, 1.0, 1.0])
    cascade = make_conf("3d_cascade_fullres", [1.0, 1.0, 1.0], data_identifier=fullres.data_identifier)
    pre = CasePreprocessor(make_plans(fullres, cascade), ["3d_fullres", "3d_cascade_fullres"])
    assert pre.data_identifiers == ["segforgePlans_3d_fullres"]
    other = make_conf("3d_cascade_fullres", [2.0, 1.0, 1.0], data_identifier=fullres.data_identifier)
    with pytest.raises(ConfigError, match="shares data_identifier 'segforgePlans_3d_fullres'"):
        CasePreprocessor(make_plans(fullres, other), ["3d_fullres", "3d_cascade_fullres"])


def test_digest_ignores_network_but_not_spacing(make_conf, make_plans) -> None:
    a = make_conf("3d_fullres", [1.0, 1.0, 1.0])
    b = a.model_copy(update={"patch_size": [64, 64, 64], "batch_size": 9})
    c = a.model_copy(update={"spacing": [1.0, 1.0, 2.0]})
    digest = preprocessing_digest(make_plans(a), a)
    assert preprocessing_digest(make_plans(b), b) == digest
    assert preprocessing_digest(make_plans(c), c) != digest


def test_channel_count_mismatch_is_a_config_error(make_conf, make_plans) -> None:
    pre = CasePreprocessor(make_plans(make_conf("3d_fullres", [1.0, 1.0, 1.0])), ["3d_fullres"])
    with pytest.raises(ConfigError, match="case 'x' has 2 channel"):
        pre.run_arrays(np.ones((2, 3, 3, 3), np.float32), None, image_props((3, 3, 3)), "x")


def _hippocampus_files(root: Path, n: int) -> list[tuple[Path, Path]]:
    images = sorted((root / "imagesTr").glob("hippocampus_*.nii.gz"))[:n]
    return [(p, root / "labelsTr" / p.name) for p in images]


def test_real_hippocampus_cases(hippocampus_msd: Path, make_conf, make_plans) -> None:
    plans = make_plans(
        make_conf("3d_fullres", [1.0, 1.0, 1.0], use_mask=[True]),
        labels={"background": 0, "Anterior": 1, "Posterior": 2},
    )
    pre = CasePreprocessor(plans, ["3d_fullres"])
    for image, label in _hippocampus_files(hippocampus_msd, 3):
        case = pre.run_files([image], label, image.name[:-7])["segforgePlans_3d_fullres"]
        raw, raw_props = SimpleITKIO().read_images([image])
        assert raw_props.spacing == (1.0, 1.0, 1.0)  # already at the target spacing: no resampling
        assert case.props.shape_after_resampling == case.props.shape_after_cropping
        assert list(case.data.shape[1:]) == case.props.shape_after_cropping
        assert np.prod(case.data.shape) <= np.prod(raw.shape)
        inside = case.seg[0] >= 0
        assert abs(float(case.data[0][inside].mean())) < 1e-4
        assert abs(float(case.data[0][inside].std()) - 1.0) < 1e-4
        assert set(np.unique(case.seg)) <= {-1, 0, 1, 2} and case.props.class_location_counts.keys() == {"1", "2"}
        assert [f.name for f in case.props.source_files] == [image.name, label.name]


def test_preprocess_case_for_inference(hippocampus_msd: Path, make_conf, make_plans) -> None:
    plans = make_plans(make_conf("3d_fullres", [1.0, 1.0, 1.0]))
    image, _ = _hippocampus_files(hippocampus_msd, 1)[0]
    case = preprocess_case([image], plans, "3d_fullres")
    assert case.seg is None and case.class_locations == {} and not case.props.has_seg
    assert case.props.case_id == "hippocampus_001"
    assert abs(float(case.data.mean())) < 1e-4  # no mask: the whole cropped image is z-scored


def test_inputs_are_not_modified_when_nothing_is_cropped(make_conf, make_plans) -> None:
    """Normalization runs in place; without cropping the cropped array is the caller's own memory."""
    plans = make_plans(make_conf("3d_fullres", [1.0, 1.0, 1.0]))
    data = np.random.default_rng(0).normal(100.0, 10.0, (1, 5, 6, 7)).astype(np.float32)
    seg = np.ones((1, 5, 6, 7), dtype=np.int8)
    before = data.copy(), seg.copy()
    CasePreprocessor(plans, ["3d_fullres"]).run_arrays(data, seg, image_props((5, 6, 7)), "x")
    np.testing.assert_array_equal(data, before[0])
    np.testing.assert_array_equal(seg, before[1])
