"""The public fake-plugin kit: what it makes importlib.metadata and the plugin manager see."""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

import pytest

from segforge.plugins import SegforgeManager
from segforge.testing import FakePlugins


def test_fake_distribution_reads_like_an_installed_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with FakePlugins(tmp_path, monkeypatch) as fakes:
        fakes.add_distribution("segforge-duo", "0.1.0", {"duo": "duo_module.plugin"})
        (dist,) = importlib.metadata.distributions()
        assert (dist.metadata["Name"], dist.version) == ("segforge-duo", "0.1.0")
        (ep,) = dist.entry_points
        assert (ep.group, ep.name, ep.value) == ("segforge", "duo", "duo_module.plugin")


def test_hide_installed_shows_no_distribution_until_one_is_added(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    fakes = FakePlugins(tmp_path, monkeypatch)
    fakes.hide_installed()
    assert list(importlib.metadata.distributions()) == []


def test_install_loads_a_failing_plugin_and_close_forgets_its_module(tmp_path, monkeypatch):
    with FakePlugins(tmp_path, monkeypatch, prefix="kit_test_") as fakes:
        module = fakes.install("segforge-broken", 'raise ImportError("needs libfoo")', version="0.3")
        info = SegforgeManager(builtins=()).plugin("broken")
        assert module.startswith("kit_test_") and (tmp_path / f"{module}.py").is_file()
        assert (info.status, info.stage, info.dist, info.version) == ("failed", "import", "segforge-broken", "0.3")
        ok = fakes.write_module("from segforge import hookimpl\n")
        SegforgeManager(builtins=(), autoload=False, extra=[ok])
        assert ok in sys.modules
    assert ok not in sys.modules
