"""plans.json round trip, and hand-edited plans giving one-line errors that name the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from planner_helpers import make_fingerprint

from segforge.errors import ConfigError
from segforge.planning import load_plans, plan_experiment, plans_path, save_plans


@pytest.fixture(scope="module")
def plans():
    return plan_experiment(make_fingerprint([[1.0, 1.0, 1.0]] * 20, [[36, 50, 35]] * 20))


def test_plans_round_trip_through_json(plans, tmp_path: Path):
    path = plans_path("Dataset999_Test", plans.plans_name, tmp_path)
    assert path == tmp_path / "Dataset999_Test" / "segforgePlans.json"
    save_plans(plans, path)
    assert load_plans(path) == plans
    data = json.loads(path.read_text())
    assert data["configurations"]["3d_fullres"]["network"]["name"] == "generic_unet"
    assert data["configurations"]["3d_fullres"]["network"]["dist"] == "segforge"
    assert data["planner"] == "default" and data["fingerprint_digest"] == plans.fingerprint_digest
    assert not list(path.parent.glob(".*.tmp"))


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["configurations"]["3d_fullres"].update(batch_size=0),
         "configurations.3d_fullres.batch_size: Input should be greater than or equal to 1"),
        (lambda d: d["configurations"]["2d"].update(patch_size=[56, -40]),
         "configurations.2d.patch_size: every patch edge must be >= 1"),
        (lambda d: d["configurations"]["2d"].update(spacing="1mm"),
         "configurations.2d.spacing: Input should be a valid list"),
        (lambda d: d.update(transpose_forward=[0, 0, 1]),
         "segforgePlans.json: transpose_forward [0, 0, 1] is not a permutation of 0..2"),
        (lambda d: d["configurations"]["3d_fullres"].update(previous_stage="3d_lowres"),
         "configurations.3d_fullres refers to missing configuration '3d_lowres'"),
        (lambda d: d.update(planer="default"), "planer: Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_hand_edited_invalid_plans_name_file_and_field(plans, tmp_path: Path, edit, expected):
    path = tmp_path / "segforgePlans.json"
    data = json.loads(plans.model_dump_json())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as info:
        load_plans(path)
    message = info.value.message
    assert message.startswith(f"{path}: ") and expected in message
    assert "\n" not in message
    assert "segforge plan --overwrite-plans" in info.value.hint


def test_missing_and_non_json_plans(tmp_path: Path):
    with pytest.raises(ConfigError, match="segforgePlans.json: file not found"):
        load_plans(tmp_path / "segforgePlans.json")
    (tmp_path / "bad.json").write_text("{'single': 'quotes'}")
    with pytest.raises(ConfigError, match=r"bad\.json: not valid JSON \(line 1, column 2\)"):
        load_plans(tmp_path / "bad.json")


def test_plans_for_network_rederives_once_and_then_loads(tmp_path: Path):
    from segforge.config.jsonio import save_model
    from segforge.planning import fingerprint_path, plans_for_network

    fp = make_fingerprint([[1.0, 1.0, 1.0]] * 20, [[36, 50, 35]] * 20)
    base = plan_experiment(fp)
    save_model(fingerprint_path(fp.dataset_name, tmp_path), fp)
    with pytest.raises(ConfigError, match="no plans for Dataset999_Test"):
        plans_for_network(fp.dataset_name, "residual_unet", preprocessed_root=tmp_path)
    save_plans(base, plans_path(fp.dataset_name, base.plans_name, tmp_path))
    made = plans_for_network(fp.dataset_name, "residual_unet", preprocessed_root=tmp_path)
    target = plans_path(fp.dataset_name, "segforgePlans__residual_unet", tmp_path)
    assert target.is_file() and load_plans(target) == made
    assert made.configurations["3d_fullres"].data_identifier == base.configurations["3d_fullres"].data_identifier
    assert plans_for_network(fp.dataset_name, "residual_unet", preprocessed_root=tmp_path) == made
