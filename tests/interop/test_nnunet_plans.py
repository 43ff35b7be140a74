"""nnU-Net's plans.json + dataset.json as segforge plans: the fields preprocessing and export read, and refusals."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from segforge_nnunet_fixture import PLAIN

from segforge.errors import ConfigError
from segforge.interop.nnunet.plans import convert_plans, legacy_architecture, read_json, resolved_configuration

NETWORK = ("generic_unet", "1.0", {"features_per_stage": [4, 8]})


def nnunet_plans() -> dict[str, Any]:
    return read_json(PLAIN / "model" / "plans.json")


def nnunet_dataset() -> dict[str, Any]:
    return read_json(PLAIN / "model" / "dataset.json")


def test_fixture_plans_convert_field_by_field():
    raw = nnunet_plans()
    plans = convert_plans(raw, nnunet_dataset(), "3d_fullres", NETWORK, "plans.json")
    conf, src = plans.configuration("3d_fullres"), raw["configurations"]["3d_fullres"]
    assert plans.dataset_name == "Dataset004_Hippocampus" and plans.plans_name == raw["plans_name"]
    assert plans.labels == {"background": 0, "Anterior": 1, "Posterior": 2} and plans.regions is None
    assert plans.image_io == "simpleitk" and plans.transpose_forward == raw["transpose_forward"]
    assert conf.spacing == src["spacing"] and conf.patch_size == src["patch_size"]
    assert conf.normalization == ["zscore"] and conf.use_mask_for_norm == src["use_mask_for_norm"]
    r = conf.resampling
    assert (r.order_data, r.order_z_data, r.order_seg, r.order_z_seg, r.force_separate_z) == (3, 0, 1, 0, None)
    assert plans.foreground_intensity_properties_per_channel["0"].percentile_99_5 == pytest.approx(
        raw["foreground_intensity_properties_per_channel"]["0"]["percentile_99_5"]
    )
    assert conf.network.name == "generic_unet" and plans.planner == "nnunet:ExperimentPlanner"


def test_regions_and_ignore_label_come_from_dataset_json():
    dataset = nnunet_dataset()
    dataset["labels"] = {"background": 0, "whole": [1, 2], "posterior": 2, "ignore": 3}
    dataset["regions_class_order"] = [1, 2]
    plans = convert_plans(nnunet_plans(), dataset, "3d_fullres", NETWORK, "plans.json")
    assert plans.regions == [[1, 2], [2]] and plans.regions_class_order == [1, 2]
    assert plans.labels["ignore"] == 3


def test_inherits_from_is_resolved_child_keys_winning():
    raw = nnunet_plans()
    raw["configurations"]["3d_fullres_bigpatch"] = {
        "inherits_from": "3d_fullres",
        "patch_size": [48, 64, 48],
        "data_identifier": "x",
    }
    merged = resolved_configuration(raw, "3d_fullres_bigpatch", "plans.json")
    assert merged["patch_size"] == [48, 64, 48] and merged["spacing"] == raw["configurations"]["3d_fullres"]["spacing"]
    assert "inherits_from" not in merged
    plans = convert_plans(raw, nnunet_dataset(), "3d_fullres_bigpatch", NETWORK, "plans.json")
    assert plans.configuration("3d_fullres_bigpatch").patch_size == [48, 64, 48]


def test_legacy_plans_architecture_matches_nnunets_defaults():
    conf = {
        "UNet_class_name": "PlainConvUNet",
        "UNet_base_num_features": 32,
        "unet_max_num_features": 64,
        "conv_kernel_sizes": [[3, 3, 3]] * 3,
        "pool_op_kernel_sizes": [[1, 1, 1], [2, 2, 2], [2, 2, 2]],
        "n_conv_per_stage_encoder": [2, 2, 2],
        "n_conv_per_stage_decoder": [2, 2],
    }
    arch = legacy_architecture(conf)
    kw = arch["arch_kwargs"]
    assert arch["network_class_name"].endswith(".PlainConvUNet")
    assert kw["features_per_stage"] == [32, 64, 64] and kw["n_conv_per_stage"] == [2, 2, 2]
    assert kw["norm_op"].endswith("InstanceNorm3d") and kw["norm_op_kwargs"] == {"eps": 1e-5, "affine": True}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p, d: p["configurations"]["3d_fullres"].update(normalization_schemes=["MyNorm"]), "MyNorm"),
        (lambda p, d: p["configurations"]["3d_fullres"].update(previous_stage="3d_lowres"), "cascade"),
        (lambda p, d: p["configurations"]["3d_fullres"].update(preprocessor_name="MyPreprocessor"), "MyPreprocessor"),
        (lambda p, d: p["configurations"]["3d_fullres"].update(resampling_fn_data="my_resample"), "my_resample"),
        (lambda p, d: p.update(image_reader_writer="NibabelIOWithReorient"), "NibabelIOWithReorient"),
        (lambda p, d: p["configurations"]["3d_fullres"].pop("spacing"), "missing field 'spacing'"),
        (lambda p, d: p.update(transpose_backward=[2, 1, 0], transpose_forward=[0, 2, 1]), "transpose_backward"),
        (lambda p, d: p["configurations"]["3d_fullres"].update(inherits_from="3d_fullres"), "inherits from itself"),
    ],
)
def test_what_segforge_cannot_reproduce_is_one_line_naming_it(edit, message: str):
    raw, dataset = copy.deepcopy(nnunet_plans()), nnunet_dataset()
    edit(raw, dataset)
    with pytest.raises(ConfigError) as info:
        convert_plans(raw, dataset, "3d_fullres", NETWORK, "model/plans.json")
    assert message in info.value.message and info.value.message.startswith("model/plans.json")
    assert "\n" not in info.value.message and info.value.hint


def test_unreadable_json_names_the_file(tmp_path: Path):
    (tmp_path / "plans.json").write_text("{not json")
    with pytest.raises(ConfigError, match="plans.json: not readable JSON"):
        read_json(tmp_path / "plans.json")
    (tmp_path / "plans.json").write_text(json.dumps([1]))
    with pytest.raises(ConfigError, match="expected a JSON object"):
        read_json(tmp_path / "plans.json")
