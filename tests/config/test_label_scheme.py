"""LabelScheme: softmax labels vs sigmoid regions and the ignore label, from dataset.json and plans."""

from __future__ import annotations

import json

import pytest

from segforge.config.dataset import load_dataset_json
from segforge.config.label_scheme import LabelScheme
from segforge.errors import ConfigError


def _dataset_json(tmp_path, labels, **extra):
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps({"channel_names": {"0": "MR"}, "labels": labels, "numTraining": 1, **extra}))
    return path


def test_region_dataset_gives_one_sigmoid_output_per_region(tmp_path):
    labels = {"background": 0, "whole": [1, 2, 3], "core": [2, 3], "enhancing": 3}
    ds = load_dataset_json(_dataset_json(tmp_path, labels, regions_class_order=[1, 2, 3]))
    scheme = LabelScheme.from_dataset_json(ds)
    assert scheme.regions == ((1, 2, 3), (2, 3), (3,))  # an integer entry is a one-label region
    assert scheme.num_outputs == 3 and scheme.num_scored == 3 and scheme.output_labels() == [1, 2, 3]
    assert scheme.foreground_values() == [1, 2, 3]
    assert scheme.evaluation_classes() == {1: (1, 2, 3), 2: (2, 3), 3: (3,)}
    assert scheme.plans_fields() == {"regions": [[1, 2, 3], [2, 3], [3]], "regions_class_order": [1, 2, 3]}


def test_ignore_label_is_not_an_output(tmp_path):
    ds = load_dataset_json(_dataset_json(tmp_path, {"background": 0, "a": 1, "b": 2, "ignore": 3}))
    scheme = LabelScheme.from_dataset_json(ds)
    assert scheme.ignore_label == 3 and scheme.label_values == (0, 1, 2)
    assert scheme.num_outputs == 3 and scheme.num_scored == 2 and scheme.output_labels() == [0, 1, 2]
    assert scheme.evaluation_classes() == {1: (1,), 2: (2,)}
    assert LabelScheme.from_labels(ds.label_values()) == scheme


def test_ignore_label_with_regions(tmp_path):
    labels = {"background": 0, "whole": [1, 2], "core": [2], "ignore": 3}
    ds = load_dataset_json(_dataset_json(tmp_path, labels, regions_class_order=[1, 2]))
    scheme = LabelScheme.from_dataset_json(ds)
    assert scheme.regions == ((1, 2), (2,)) and scheme.ignore_label == 3 and scheme.num_outputs == 2


def test_ignore_must_be_the_highest_label(tmp_path):
    with pytest.raises(ConfigError, match="label 'ignore' must have the highest value \\(2\\), got 1"):
        load_dataset_json(_dataset_json(tmp_path, {"background": 0, "ignore": 1, "a": 2}))


def test_regions_need_a_class_order(tmp_path):
    ds = load_dataset_json(_dataset_json(tmp_path, {"background": 0, "whole": [1, 2], "core": [2]}))
    with pytest.raises(ConfigError, match="has region labels but no regions_class_order") as info:
        LabelScheme.from_dataset_json(ds)
    assert "regions_class_order" in info.value.hint


def test_class_order_must_match_the_regions(tmp_path):
    labels = {"background": 0, "whole": [1, 2], "core": [2]}
    ds = load_dataset_json(_dataset_json(tmp_path, labels, regions_class_order=[1, 2, 3]))
    with pytest.raises(ConfigError, match="2 region\\(s\\) but regions_class_order is \\[1, 2, 3\\]"):
        LabelScheme.from_dataset_json(ds)


def test_plans_validate_regions_and_order_together():
    from pydantic import ValidationError

    from segforge.config.plans import Plans

    plans_json = {
        "dataset_name": "D", "plans_name": "p", "planner": "x", "planner_version": "1", "segforge_version": "0",
        "fingerprint_digest": "d", "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2],
        "original_median_spacing_after_transp": [1, 1, 1], "original_median_shape_after_transp": [1, 1, 1],
        "labels": {"background": 0}, "foreground_intensity_properties_per_channel": {}, "configurations": {},
    }  # fmt: skip
    ok = Plans.model_validate({**plans_json, "regions": [[1, 2], [2]], "regions_class_order": [1, 2]})
    assert LabelScheme.from_plans(ok).regions == ((1, 2), (2,))
    with pytest.raises(ValidationError, match="regions and regions_class_order must be given together"):
        Plans.model_validate({**plans_json, "regions": [[1, 2], [2]]})


def test_plans_without_foreground_or_regions_are_an_error():
    from segforge.config.plans import Plans

    plans = Plans.model_construct(plans_name="p", dataset_name="D", labels={"background": 0}, regions=None,
                                  regions_class_order=None)  # fmt: skip
    with pytest.raises(ConfigError, match="plans 'p' of D have no foreground label and no regions") as info:
        LabelScheme.from_plans(plans)
    assert "--overwrite-plans" in info.value.hint
