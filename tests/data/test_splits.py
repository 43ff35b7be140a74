"""Cross-validation splits: nnU-Net's seeded KFold without sklearn, the splits file, fold selection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from segforge.data.splits import (
    SPLITS_FILE,
    generate_crossval_split,
    get_fold,
    kfold_indices,
    load_or_create_splits,
    parse_fold,
)
from segforge.errors import ConfigError, UsageError

IDS = [f"hippocampus_{i:03d}" for i in range(1, 24)]


@pytest.mark.parametrize(("n", "k", "seed"), [(23, 5, 12345), (260, 5, 12345), (5, 5, 12345), (17, 3, 7)])
def test_kfold_equals_sklearn(n, k, seed):
    sklearn_model_selection = pytest.importorskip("sklearn.model_selection", reason="scikit-learn not installed")
    expected = list(sklearn_model_selection.KFold(n_splits=k, shuffle=True, random_state=seed).split(range(n)))
    ours = kfold_indices(n, k, seed)
    assert len(ours) == k
    for (tr, va), (etr, eva) in zip(ours, expected, strict=True):
        assert tr.tolist() == etr.tolist() and va.tolist() == eva.tolist()


def test_split_known_values_and_partition():
    splits = generate_crossval_split(reversed(IDS))  # input order does not matter: ids are sorted first
    # reference: nnunetv2 2.8.1 generate_crossval_split(IDS, seed=12345, n_splits=5)
    assert splits[0].val == ["hippocampus_004", "hippocampus_009", "hippocampus_011", "hippocampus_018",
                             "hippocampus_020"]  # fmt: skip
    assert splits[4].val == ["hippocampus_002", "hippocampus_003", "hippocampus_005", "hippocampus_006"]
    assert sorted(v for s in splits for v in s.val) == IDS
    for s in splits:
        assert sorted(s.train + s.val) == IDS and s.train == sorted(s.train)
    assert [len(s.val) for s in splits] == [5, 5, 5, 4, 4]


def test_file_is_written_once_and_then_used_as_given(tmp_path: Path):
    train, val = get_fold(tmp_path, IDS, 0)
    path = tmp_path / SPLITS_FILE
    written = json.loads(path.read_text())
    assert len(written) == 5 and written[0] == {"train": train, "val": val}
    custom = [{"train": IDS[:20], "val": IDS[20:]}, {"train": IDS[3:], "val": IDS[:3]}]
    path.write_text(json.dumps(custom))
    assert get_fold(tmp_path, IDS, 1) == (IDS[3:], IDS[:3])
    assert load_or_create_splits(tmp_path, IDS)[0].val == IDS[20:]
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write left nothing behind


def test_unknown_ids_in_file_are_one_line_error_naming_the_file(tmp_path: Path):
    (tmp_path / SPLITS_FILE).write_text(json.dumps([{"train": IDS[:10] + ["ghost_1", "ghost_2"], "val": IDS[10:]}]))
    with pytest.raises(ConfigError) as info:
        get_fold(tmp_path, IDS, 0)
    msg = str(info.value)
    assert "\n" not in msg and str(tmp_path / SPLITS_FILE) in msg
    assert "fold 0 train names 2 case(s) that are not preprocessed: ghost_1, ghost_2" in msg


@pytest.mark.parametrize(
    ("content", "message"),
    [('{"train": []}', "splits_final.json: Input should be a valid list"),
     ('[{"train": ["a"]}]', "0.val: Field required"),
     ('[{"train": ["a"], "val": []}]', "0.val: List should have at least 1 item"),
     ("[]", "contains no folds"),
     ("[{", "not valid JSON")],
)  # fmt: skip
def test_malformed_file(tmp_path: Path, content: str, message: str):
    (tmp_path / SPLITS_FILE).write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_or_create_splits(tmp_path, ["a"])


def test_fold_all_trains_and_validates_on_everything(tmp_path: Path):
    train, val = get_fold(tmp_path, IDS[::-1], "all")
    assert train == val == IDS
    assert not (tmp_path / SPLITS_FILE).exists()


def test_fold_out_of_range_lists_available_folds(tmp_path: Path):
    with pytest.raises(UsageError) as info:
        get_fold(tmp_path, IDS, 5)
    assert "fold 5 does not exist" in str(info.value) and "(available: 0, 1, 2, 3, 4, all)" in str(info.value)
    assert info.value.exit_code == 2


def test_parse_fold_and_too_few_cases(tmp_path: Path):
    assert parse_fold("3") == 3 and parse_fold(0) == 0 and parse_fold("ALL") == "all"
    for bad in ("-1", "x", -2, "1.5"):
        with pytest.raises(UsageError, match="is not a fold number or 'all'"):
            parse_fold(bad)
    with pytest.raises(ConfigError, match="cannot make 5 cross-validation folds from 3 case"):
        get_fold(tmp_path, IDS[:3], 0)
