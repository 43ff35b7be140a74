"""Property tests: any dataset.json or hand-edited plans either loads as a valid model or is refused with a
SegforgeError (never another exception), and whatever loads survives a save/load round trip."""

from __future__ import annotations

import copy
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segforge.config.dataset import DatasetJson, load_dataset_json
from segforge.errors import SegforgeError
from segforge.planning.experiment import load_plans, save_plans

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SCALARS = st.none() | st.booleans() | st.integers(-3, 300) | st.floats() | st.text(max_size=6)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
INDEX_KEYS = st.sampled_from(["0", "1", "2", "3", "01", " 1", "-1", "x", ""])
CHANNELS = st.dictionaries(INDEX_KEYS, st.text(max_size=5), max_size=3)
LABELS_V1 = st.dictionaries(INDEX_KEYS, st.sampled_from(["background", "a", "b", "a "]), max_size=4)
LABELS_V2 = st.dictionaries(
    st.sampled_from(["background", "a", "b", "ignore"]),
    st.integers(-1, 4) | st.lists(st.integers(-1, 4), max_size=3) | st.sampled_from(["1", 1.0]),
    max_size=4,
)
ENTRY = st.fixed_dictionaries({"image": st.sampled_from(["./imagesTr/c_1.nii.gz", "./imagesTr/c.nii", "c.nii.gz"]),
                               "label": st.sampled_from(["./labelsTr/c_1.nii.gz", ""])}) | JSON  # fmt: skip
EDIT_VALUES = JSON | st.sampled_from([-1, 0, math.nan, math.inf, [], {}, [-16, 16, 14], "no_such_net", [0, 0, 1]])
RANDOM_DATASET = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(max_size=5) | JSON,
        "modality": CHANNELS | JSON,
        "channel_names": CHANNELS | JSON,
        "labels": LABELS_V1 | LABELS_V2 | JSON,
        "numTraining": st.integers(-2, 4) | JSON,
        "training": st.lists(ENTRY, max_size=3) | JSON,
        "test": st.lists(st.sampled_from(["./imagesTs/t.nii.gz", "t"]), max_size=2) | JSON,
        "file_ending": st.sampled_from([".nii.gz", ".mha", "nii", ".", ""]) | JSON,
        "regions_class_order": st.lists(st.integers(0, 3), max_size=3) | JSON,
    },
)


def _paths(node: Any) -> list[tuple]:
    """Every key/index path in a JSON tree (iteratively, in a stable order)."""
    out: list[tuple] = []
    todo: list[tuple[tuple, Any]] = [((), node)]
    while todo:
        prefix, value = todo.pop()
        if prefix:
            out.append(prefix)
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        todo.extend(((*prefix, k), v) for k, v in items)
    return sorted(out, key=repr)  # a stable order, so hypothesis can shrink and replay examples


@st.composite
def valid_dataset(draw: st.DrawFn) -> dict:
    """A well-formed v1 or v2 dataset.json with 1-3 channels, 1-3 foreground labels and some cases."""
    channels = {str(i): draw(st.sampled_from(["CT", "T1", "T2", "ADC"])) for i in range(draw(st.integers(1, 3)))}
    names = ["background", *[f"l{i}" for i in range(1, draw(st.integers(2, 4)))]]
    cases = [f"c_{i:03d}" for i in range(draw(st.integers(0, 3)))]
    if draw(st.booleans()):
        return {"modality": channels, "labels": {str(i): n for i, n in enumerate(names)}, "numTraining": len(cases),
                "training": [{"image": f"./imagesTr/{c}.nii.gz", "label": f"./labelsTr/{c}.nii.gz"} for c in cases],
                "test": []}  # fmt: skip
    labels: dict[str, Any] = {n: i for i, n in enumerate(names)}
    if draw(st.booleans()):
        labels["region"] = list(range(1, len(names)))
    return {"channel_names": channels, "labels": labels, "numTraining": len(cases),
            "file_ending": draw(st.sampled_from([".nii.gz", ".mha", ".nrrd"]))}  # fmt: skip


def _edit(draw: st.DrawFn, data: dict, edits: int) -> dict:
    """``data`` with ``edits`` hand edits: a value somewhere replaced, or a key deleted."""
    data = json.loads(json.dumps(data))
    for _ in range(edits):
        paths = _paths(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()) and isinstance(parent, dict):
            parent.pop(path[-1], None)
        else:
            # a copy: sampled_from hands out the same list object every time, and editing it in place
            # made later examples cyclic (RecursionError) and generation flaky
            parent[path[-1]] = copy.deepcopy(draw(EDIT_VALUES))
    return data


@st.composite
def edited_dataset(draw: st.DrawFn) -> dict:
    return _edit(draw, draw(valid_dataset()), draw(st.integers(0, 2)))


def _write(folder: Path, name: str, data: Any) -> Path:
    path = folder / name
    path.write_text(json.dumps(data))  # allow_nan: NaN/Infinity literals are part of what users can write
    return path


def _normalized(dj: DatasetJson) -> tuple:
    """Everything the pipeline reads from a dataset.json (must not raise for a valid model)."""
    return (dj.channel_names(), dj.label_values(), sorted(dj.allowed_label_values()), dj.regions(),
            dj.file_ending, dj.num_training, dj.ignore_label, [e.model_dump() for e in dj.training or []])  # fmt: skip


@SETTINGS
@given(data=RANDOM_DATASET | edited_dataset())
def test_dataset_json_loads_or_refuses_and_round_trips(data: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            dj = load_dataset_json(_write(Path(tmp), "dataset.json", data))
        except SegforgeError as exc:
            assert "dataset.json" in exc.message and "\n" not in exc.message and exc.hint
            return
        view = _normalized(dj)
        try:
            dj.save(Path(tmp) / "saved.json")
        except SegforgeError as exc:  # region labels cannot be written in v1 form: refused, by name
            assert dj.has_regions and "region" in exc.message
            return
        again = load_dataset_json(Path(tmp) / "saved.json")
        assert _normalized(again)[:7] == view[:7]


def _valid_plans() -> dict:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inference"))
    from inference_helpers import make_plans

    return json.loads(make_plans((2.0, 1.0, 1.5), dataset="Task099_Test").model_dump_json())


VALID_PLANS = _valid_plans()


@st.composite
def edited_plans(draw: st.DrawFn) -> dict:
    """The valid plans with one to three hand edits."""
    return _edit(draw, VALID_PLANS, draw(st.integers(1, 3)))


@SETTINGS
@given(data=edited_plans())
def test_hand_edited_plans_load_or_refuse_and_round_trip(data: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            plans = load_plans(_write(Path(tmp), "segforgePlans.json", data))
        except SegforgeError as exc:
            assert "segforgePlans.json" in exc.message and "\n" not in exc.message and exc.hint
            return
        save_plans(plans, Path(tmp) / "saved.json")
        assert load_plans(Path(tmp) / "saved.json") == plans


def test_the_unedited_plans_are_valid(tmp_path: Path) -> None:
    plans = load_plans(_write(tmp_path, "p.json", VALID_PLANS))
    assert plans.configurations["3d_fullres"].patch_size == [8, 8, 8]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_literals_are_refused(tmp_path: Path, literal: str) -> None:
    text = json.dumps(VALID_PLANS).replace('"spacing": [2.0', f'"spacing": [{literal}', 1)
    (tmp_path / "p.json").write_text(text)
    with pytest.raises(SegforgeError, match=rf"p.json: not valid JSON \({literal} is not a number\)"):
        load_plans(tmp_path / "p.json")
