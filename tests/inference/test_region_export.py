"""Export of region-based and ignore-label models: threshold per region, regions_class_order, no ignore channel."""

from __future__ import annotations

import numpy as np
import pytest
from inference_helpers import make_plans, write_image

from segforge.inference.export import export_prediction, label_values, logits_to_segmentation, read_probabilities
from segforge.preprocessing.preprocessor import preprocess_case


def _case(tmp_path):
    """A 12x10x9 image with labels 0/1/2 in blocks, preprocessed at 1 mm (no resampling, cropped)."""
    labels = np.zeros((12, 10, 9), dtype=np.uint8)
    labels[2:10, 2:8, 1:8] = 1
    labels[4:8, 3:6, 3:6] = 2
    image = np.zeros(labels.shape, dtype=np.float32)
    image[1:11, 1:9, 0:9] = 10.0 + 40.0 * labels[1:11, 1:9, 0:9]
    path = write_image(tmp_path / "raw" / "case_0000.nii.gz", image, (1.0, 1.0, 1.0))
    return path, labels


def _region_logits(labels, props, regions):
    crop = labels[tuple(slice(a, b) for a, b in props.bbox)]
    return np.stack([np.where(np.isin(crop, r), 4.0, -4.0) for r in regions]).astype(np.float32)


@pytest.mark.parametrize(
    ("regions", "order", "expected"),
    [
        ([[1, 2], [2]], [1, 2], {0: 0, 1: 1, 2: 2}),  # nested regions in order restore the labels
        ([[2], [1, 2]], [2, 1], {0: 0, 1: 1, 2: 1}),  # the later (larger) region overwrites the earlier one
        ([[1, 2], [2]], [5, 7], {0: 0, 1: 5, 2: 7}),  # the written values are the class order's
    ],
)
def test_regions_are_thresholded_and_written_in_class_order(tmp_path, regions, order, expected):
    path, labels = _case(tmp_path)
    plans = make_plans((1.0, 1.0, 1.0)).model_copy(update={"regions": regions, "regions_class_order": order})
    case = preprocess_case([path], plans, "3d_fullres")
    assert case.props.shape_after_cropping != case.props.shape_before_cropping
    seg, _ = logits_to_segmentation(_region_logits(labels, case.props, regions), case.props, plans,
                                    plans.configurations["3d_fullres"])  # fmt: skip
    np.testing.assert_array_equal(seg, np.vectorize(expected.get)(labels))


def test_region_probabilities_are_sigmoids_per_region(tmp_path):
    path, labels = _case(tmp_path)
    regions = [[1, 2], [2]]
    plans = make_plans((1.0, 1.0, 1.0)).model_copy(update={"regions": regions, "regions_class_order": [1, 2]})
    case = preprocess_case([path], plans, "3d_fullres")
    out = export_prediction(_region_logits(labels, case.props, regions), case.props, plans,
                            plans.configurations["3d_fullres"], tmp_path / "pred" / "case.nii.gz",
                            save_probabilities=True)  # fmt: skip
    probs, info = read_probabilities(out.with_name("case.npz"))
    assert info.labels == [1, 2] and probs.shape == (2, *labels.shape)
    sig = 1.0 / (1.0 + np.exp(-4.0))
    assert float(probs[0, 5, 4, 4]) == pytest.approx(sig, abs=1e-3)  # inside both regions
    assert float(probs[1, 2, 2, 1]) == pytest.approx(1.0 - sig, abs=1e-3)  # in region 0 only
    assert float(probs[:, 0, 0, 0].max()) == 0.0  # outside the crop


def test_ignore_label_has_no_output_channel():
    plans = make_plans((1.0, 1.0, 1.0), labels={"background": 0, "a": 1, "b": 2, "ignore": 3})
    assert label_values(plans, 3).tolist() == [0, 1, 2]
