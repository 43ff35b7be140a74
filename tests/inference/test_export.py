"""Export round trip: raw image -> preprocess_case -> logits encoding a known label map -> file == that map."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from inference_helpers import make_plans, write_image

from segforge.errors import ConfigError
from segforge.inference.export import export_prediction, label_values, logits_to_segmentation, read_probabilities
from segforge.preprocessing.preprocessor import preprocess_case

DIRECTION = (0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, -1.0)


def raw_case(tmp_path, shape, spacing, box, seed=0):
    """An image nonzero only inside ``box`` (so preprocessing crops) and a label map inside the box."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, dtype=np.uint8)
    inner = tuple(slice(a, b) for a, b in box)
    block = rng.integers(0, 3, size=[(b - a + 1) // 2 for a, b in box])
    labels[inner] = np.kron(block, np.ones((2, 2, 2), dtype=np.int64))[tuple(slice(0, b - a) for a, b in box)]
    image = np.zeros(shape, dtype=np.float32)
    image[inner] = 20.0 + 40.0 * labels[inner] + rng.uniform(0, 5, labels[inner].shape)
    path = write_image(tmp_path / "raw" / "case_0000.nii.gz", image, spacing, direction=DIRECTION)
    return path, labels


def known_logits(labels, props, plans):
    """Logits whose argmax is ``labels`` mapped onto the preprocessed grid (nearest, grid-mode)."""
    seg = labels.transpose(plans.transpose_forward)[tuple(slice(a, b) for a, b in props.bbox)]
    idx = np.ix_(
        *[
            ((np.arange(n) + 0.5) * s / n).astype(int)
            for s, n in zip(seg.shape, props.shape_after_resampling, strict=True)
        ]
    )
    pre = seg[idx]
    return (np.eye(3, dtype=np.float32)[pre].transpose(3, 0, 1, 2) * 6 - 3).copy()


@pytest.mark.parametrize(
    ("spacing", "transpose", "target", "separate_z"),
    [
        ((0.8, 3.0, 0.9), (1, 0, 2), (1.5, 0.8, 0.9), True),  # anisotropic, transposed: nearest along z
        ((1.0, 1.0, 1.0), (0, 1, 2), (0.5, 1.0, 1.0), False),  # isotropic source: linear on every axis
    ],
)
def test_export_round_trip_restores_labels_and_geometry(tmp_path, spacing, transpose, target, separate_z):
    from segforge.preprocessing.resampling import separate_z_axis

    path, labels = raw_case(tmp_path, (20, 7, 18), spacing, [(2, 17), (1, 6), (3, 15)])
    plans = make_plans(target, transpose=transpose)
    conf = plans.configurations["3d_fullres"]
    case = preprocess_case([path], plans, "3d_fullres")
    props = case.props
    assert props.shape_after_cropping != props.shape_before_cropping  # cropped
    assert props.shape_after_resampling != props.shape_after_cropping  # resampled
    assert (separate_z_axis(props.spacing, props.original_spacing) is not None) == separate_z
    logits = known_logits(labels, props, plans)
    out = export_prediction(logits, props, plans, conf, tmp_path / "pred" / "case.nii.gz")
    written = sitk.ReadImage(str(out))
    raw = sitk.ReadImage(str(path))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(written), labels)
    assert written.GetSize() == raw.GetSize()
    np.testing.assert_allclose(written.GetSpacing(), raw.GetSpacing())
    np.testing.assert_allclose(written.GetOrigin(), raw.GetOrigin())
    np.testing.assert_allclose(written.GetDirection(), raw.GetDirection())
    assert written.GetPixelID() == sitk.sitkUInt8


def test_export_without_resampling_does_not_touch_the_logits(tmp_path):
    path, labels = raw_case(tmp_path, (12, 10, 9), (1.0, 1.0, 1.0), [(1, 11), (2, 9), (0, 9)])
    plans = make_plans((1.0, 1.0, 1.0))
    case = preprocess_case([path], plans, "3d_fullres")
    logits = known_logits(labels, case.props, plans)
    before = logits.copy()
    seg, _ = logits_to_segmentation(logits, case.props, plans, plans.configurations["3d_fullres"])
    np.testing.assert_array_equal(seg, labels)
    np.testing.assert_array_equal(logits, before)


def test_probabilities_file_and_sidecar(tmp_path):
    path, labels = raw_case(tmp_path, (12, 10, 9), (1.0, 1.0, 1.0), [(1, 11), (2, 9), (1, 8)])
    plans = make_plans((1.0, 1.0, 1.0))
    case = preprocess_case([path], plans, "3d_fullres")
    conf = plans.configurations["3d_fullres"]
    out = export_prediction(known_logits(labels, case.props, plans), case.props, plans, conf,
                            tmp_path / "pred" / "case.nii.gz", save_probabilities=True)  # fmt: skip
    probs, info = read_probabilities(out.with_name("case.npz"))
    assert probs.dtype == np.float16 and probs.shape == (3, 12, 10, 9)
    assert info.labels == [0, 1, 2] and info.case_id == "case" and info.shape == [12, 10, 9]
    np.testing.assert_allclose(probs.astype(np.float32).sum(0), 1.0, atol=2e-3)
    np.testing.assert_array_equal(probs.argmax(0), labels)
    e = np.exp(np.float32([3.0, -3.0, -3.0]))
    assert probs[0, 0, 0, 0] == 1.0  # outside the crop: background
    assert probs[:, 5, 5, 5].max() == pytest.approx(e[0] / e.sum(), abs=1e-3)
    assert not list((tmp_path / "pred").glob(".*"))  # no temporaries left


def test_label_count_mismatch_is_a_config_error():
    plans = make_plans((1.0, 1.0, 1.0))
    with pytest.raises(ConfigError, match="declare 3 labels but the network predicts 4 channels"):
        label_values(plans, 4)


def test_non_consecutive_labels_map_channels_to_label_values(tmp_path):
    path, labels = raw_case(tmp_path, (12, 10, 9), (1.0, 1.0, 1.0), [(1, 11), (2, 9), (0, 9)])
    plans = make_plans((1.0, 1.0, 1.0), labels={"background": 0, "a": 3, "b": 7})
    case = preprocess_case([path], plans, "3d_fullres")
    seg, _ = logits_to_segmentation(known_logits(labels, case.props, plans), case.props, plans,
                                    plans.configurations["3d_fullres"])  # fmt: skip
    np.testing.assert_array_equal(seg, np.array([0, 3, 7])[labels])
