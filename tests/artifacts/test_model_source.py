"""resolve_model_source: which kind of model a path is, and where converted copies are cached."""

from __future__ import annotations

from pathlib import Path

import pytest

from segforge.errors import UsageError
from segforge.packaging import model_source


def test_run_folder_is_returned_unchanged(tmp_path: Path) -> None:
    (tmp_path / "fold_0").mkdir()
    assert model_source.resolve_model_source(tmp_path) == tmp_path


def test_missing_path_is_one_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"model .*nope does not exist"):
        model_source.resolve_model_source(tmp_path / "nope")


def test_cache_root_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGFORGE_CACHE", str(tmp_path / "a"))
    assert model_source.cache_root() == tmp_path / "a"
    assert model_source.cache_root(tmp_path / "b") == tmp_path / "b"
    monkeypatch.delenv("SEGFORGE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert model_source.cache_root() == tmp_path / "x" / "segforge"


def _nnunet_folder(root: Path) -> Path:
    (root / "fold_0").mkdir(parents=True)
    for name in ("plans.json", "dataset.json", "fold_0/checkpoint_final.pth"):
        (root / name).write_text("{}")
    return root


def test_nnunet_folder_goes_to_the_converter_with_a_stable_cache_key(tmp_path, monkeypatch) -> None:
    folder = _nnunet_folder(tmp_path / "nn")
    calls = []

    def fake_convert(src, out_dir, *, folds, checkpoint):
        calls.append((src, out_dir, folds, checkpoint))
        return out_dir

    import sys
    import types

    fake = types.ModuleType("segforge.interop.nnunet")
    fake.to_model_directory = fake_convert
    monkeypatch.setitem(sys.modules, "segforge.interop.nnunet", fake)
    monkeypatch.setitem(sys.modules, "segforge.interop", types.ModuleType("segforge.interop"))
    first = model_source.resolve_model_source(folder, folds=["0"], checkpoint="best", cache_dir=tmp_path / "c")
    again = model_source.resolve_model_source(folder, folds=["0"], checkpoint="best", cache_dir=tmp_path / "c")
    assert first == again and first.parent == tmp_path / "c" / "nnunet"
    assert calls[0][0] == folder and calls[0][2:] == (["0"], "best")
    other = model_source.resolve_model_source(folder, folds=["0"], checkpoint="final", cache_dir=tmp_path / "c")
    assert other != first  # another checkpoint is another conversion
    assert model_source.is_nnunet_model_folder(folder)
    assert not model_source.is_nnunet_model_folder(tmp_path)
