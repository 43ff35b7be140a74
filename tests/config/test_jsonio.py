"""JSON artifacts: one-line errors naming the file and field; pickles are refused unread."""

from __future__ import annotations

import os
import pickle

import pytest
from pydantic import BaseModel

from segforge.config.jsonio import load_model, save_model
from segforge.errors import ConfigError


class Thing(BaseModel):
    name: str
    size: int


def test_round_trip(tmp_path):
    save_model(tmp_path / "t.json", Thing(name="a", size=3))
    assert load_model(tmp_path / "t.json", Thing) == Thing(name="a", size=3)


def test_wrong_type_names_file_and_field(tmp_path):
    (tmp_path / "t.json").write_text('{"name": "a", "size": "big"}')
    with pytest.raises(ConfigError) as err:
        load_model(tmp_path / "t.json", Thing)
    assert str(err.value).startswith(f"{tmp_path / 't.json'}: size: ")
    assert "\n" not in str(err.value)


def test_missing_file_and_invalid_json(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_model(tmp_path / "nope.json", Thing)
    (tmp_path / "bad.json").write_text('{"name": ')
    with pytest.raises(ConfigError, match=r"not valid JSON \(line 1"):
        load_model(tmp_path / "bad.json", Thing)


class _Payload:
    def __reduce__(self):
        return (open, ("/tmp/segforge_pwned_jsonio", "w"))


def test_pickle_in_place_of_json_is_refused_without_running(tmp_path):
    marker = "/tmp/segforge_pwned_jsonio"
    if os.path.exists(marker):
        os.remove(marker)
    (tmp_path / "plans.json").write_bytes(pickle.dumps(_Payload()))
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_model(tmp_path / "plans.json", Thing)
    assert not os.path.exists(marker)
