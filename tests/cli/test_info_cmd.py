"""``segforge info``: versions, CUDA, folders with their source, plugins, report-header lines."""

from __future__ import annotations

import importlib.metadata
import json
import platform

from segforge_cli_fakes import BROKEN_PLUGIN, find_row, tiny_plugin

from segforge._version import __version__


def test_info_json_has_versions_folders_plugins_and_header(cli, fake_dists, monkeypatch, tmp_path):
    monkeypatch.setenv("SEGFORGE_RAW", str(tmp_path / "raw"))
    monkeypatch.setenv("RESULTS_FOLDER", str(tmp_path / "res"))
    monkeypatch.chdir(tmp_path)
    fake_dists("segforge-tiny", tiny_plugin(), plugin="tiny", version="1.2.3")
    result = cli("info", "--json")
    assert result.exit_code == 0 and result.stderr == ""
    data = json.loads(result.stdout)
    assert data["segforge"] == __version__ and data["python"] == platform.python_version()
    assert data["packages"]["torch"] == importlib.metadata.version("torch")
    assert set(data["packages"]) >= {"torch", "numpy", "SimpleITK", "pydantic", "typer"}
    assert data["cuda"]["available"] in (True, False) and "devices" in data["cuda"]
    assert data["folders"] == {
        "raw": {"path": str(tmp_path / "raw"), "source": "SEGFORGE_RAW"},
        "preprocessed": {"path": str(tmp_path / "segforge_data" / "preprocessed"), "source": "default"},
        "results": {"path": str(tmp_path / "res"), "source": "RESULTS_FOLDER"},
    }
    plugins = {p["name"]: p for p in data["plugins"]}
    assert plugins["tiny"]["status"] == "ok" and plugins["builtin.networks"]["status"] == "ok"
    assert data["report_header"] == ["tiny: tiny kernels: none"]
    assert data["conflicts"] == []


def test_info_text(cli, fake_dists, monkeypatch, tmp_path):
    monkeypatch.setenv("SEGFORGE_PREPROCESSED", str(tmp_path / "pre"))
    fake_dists("segforge-tiny", tiny_plugin(), plugin="tiny", version="1.2.3")
    result = cli("info")
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert find_row(text, "segforge") == ["segforge", __version__]
    assert find_row(text, "torch") == ["torch", importlib.metadata.version("torch")]
    assert find_row(text, "CUDA")[1].startswith(("not available", "available (CUDA"))
    assert find_row(text, "preprocessed") == ["preprocessed", str(tmp_path / "pre"), "SEGFORGE_PREPROCESSED"]
    assert find_row(text, "raw")[2] == "default"
    assert find_row(text, "tiny") == ["tiny", "segforge-tiny", "1.2.3", "ok", "register_networks, report_header", "2"]
    assert find_row(text, "builtin.networks")[3] == "ok"  # info shows builtins too
    assert find_row(text.split("plugin report\n")[1], "tiny") == ["tiny", "tiny kernels: none"]


def test_info_keeps_working_when_a_plugin_failed(cli, fake_dists):
    fake_dists("segforge-broken", BROKEN_PLUGIN, plugin="broken", version="0.3")
    result = cli("info")
    assert result.exit_code == 0, result.stderr
    assert find_row(result.stdout, "broken")[:4] == ["broken", "segforge-broken", "0.3", "failed"]
    assert find_row(result.stdout.split("problems\n")[1], "broken") == [
        "broken",
        "import",
        "ImportError: needs libfoo",
    ]
    data = json.loads(cli("info", "--json").stdout)
    broken = next(p for p in data["plugins"] if p["name"] == "broken")
    assert (broken["status"], broken["error"]) == ("failed", "ImportError: needs libfoo")


def test_version_verbose_is_info(cli):
    assert cli("--version", "-v").stdout.splitlines()[:3] == cli("info").stdout.splitlines()[:3]
