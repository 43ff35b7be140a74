"""``segforge components list`` and ``segforge components show``."""

from __future__ import annotations

import json

import pytest
from segforge_cli_fakes import BROKEN_PLUGIN, cells, find_row, tiny_plugin

from segforge._version import __version__


def test_list_table_shows_builtin_and_plugin_networks(cli, fake_dists):
    fake_dists("segforge-tiny", tiny_plugin(), plugin="tiny", version="1.2.3")
    result = cli("components", "list")
    assert result.exit_code == 0, result.stderr
    assert find_row(result.stdout, "kind") == ["kind", "name", "version", "origin", "summary"]
    networks = {row[1]: row for line in result.stdout.splitlines() if (row := cells(line))[0] == "network"}
    assert {"generic_unet", "residual_unet", "tinynet", "tinynet_strict"} <= set(networks)
    assert networks["generic_unet"][3] == f"builtin.networks (segforge {__version__})"
    assert networks["tinynet"] == [
        "network",
        "tinynet",
        "2.5",
        "tiny (segforge-tiny 1.2.3)",
        "A tiny network for CLI tests.",
    ]


@pytest.mark.parametrize("kind", ["network", "networks"])
def test_list_json_for_one_kind(cli, fake_dists, kind):
    fake_dists("segforge-tiny", tiny_plugin(), plugin="tiny", version="1.2.3")
    result = cli("components", "list", "--kind", kind, "--json")
    assert result.exit_code == 0 and result.stderr == ""
    data = json.loads(result.stdout)
    assert {c["kind"] for c in data} == {"network"}
    by_name = {c["name"]: c for c in data}
    assert by_name["tinynet"] == {
        "kind": "network",
        "name": "tinynet",
        "version": "2.5",
        "origin": {"plugin": "tiny", "dist": "segforge-tiny", "version": "1.2.3", "builtin": False},
        "summary": "A tiny network for CLI tests.",
    }
    assert by_name["generic_unet"]["origin"] == {
        "plugin": "builtin.networks",
        "dist": "segforge",
        "version": __version__,
        "builtin": True,
    }


def test_list_of_an_empty_kind_says_so(cli, monkeypatch):
    monkeypatch.setenv("SEGFORGE_DISABLE_PLUGINS", "builtin.callbacks")  # registers the only builtin callback
    result = cli("components", "list", "--kind", "callback")
    assert result.exit_code == 0
    assert result.stderr.strip() == "no callback components registered"
    assert cli("components", "list", "--kind", "callback", "--json").stdout == "[]\n"


def test_list_unknown_kind_is_a_one_line_error(cli):
    result = cli("components", "list", "--kind", "netwrok")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: unknown component kind 'netwrok' (kinds: network, trainer, loss, planner, normalization, "
        "image_io, callback)",
        "hint: did you mean 'network'?",
    ]


def test_list_needs_a_healthy_registry(cli, fake_dists):
    fake_dists("segforge-broken", BROKEN_PLUGIN, plugin="broken", version="0.3")
    result = cli("components", "list")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("error: plugin 'broken' (segforge-broken 0.3) failed to import")
    assert cli("components", "show", "network", "generic_unet").exit_code == 2


def test_show_plugin_network_json(cli, fake_dists):
    fake_dists("segforge-tiny", tiny_plugin(), plugin="tiny", version="1.2.3")
    result = cli("components", "show", "network", "tinynet", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["kind"], data["name"], data["version"]) == ("network", "tinynet", "2.5")
    assert data["origin"] == {"plugin": "tiny", "dist": "segforge-tiny", "version": "1.2.3", "builtin": False}
    assert data["doc"] == "A tiny network for CLI tests.\n\nIt builds nothing."
    assert data["dims"] == [3] and data["recommended_trainer"] == "tiny_trainer"
    params = data["params"]
    assert params["defaults"] == {"width": 8, "depth": 2} and params["required"] == []
    assert params["schema"]["properties"]["width"]["description"] == "channels of the first stage"


def test_show_params_without_defaults(cli, fake_dists):
    fake_dists("segforge-tiny", tiny_plugin(), plugin="tiny")
    data = json.loads(cli("components", "show", "network", "tinynet_strict", "--json").stdout)
    assert data["params"]["defaults"] is None and data["params"]["required"] == ["kernel"]
    assert data["params"]["note"].startswith("no defaults: 1 validation error for Params kernel Field required")
    text = cli("components", "show", "network", "tinynet_strict").stdout
    assert find_row(text, "kernel") == ["kernel", "int", "required", "-"]


def test_show_plugin_network_text(cli, fake_dists):
    fake_dists("segforge-tiny", tiny_plugin(), plugin="tiny", version="1.2.3")
    result = cli("components", "show", "network", "tinynet")
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert find_row(text, "origin") == ["origin", "plugin 'tiny' (segforge-tiny 1.2.3)"]
    assert find_row(text, "dims") == ["dims", "3"]
    assert find_row(text, "recommended_trainer") == ["recommended_trainer", "tiny_trainer"]
    assert "\nA tiny network for CLI tests.\n\nIt builds nothing.\n" in text
    assert find_row(text, "param") == ["param", "type", "default", "description"]
    assert find_row(text, "width") == ["width", "int", "8", "channels of the first stage"]
    assert find_row(text, "depth") == ["depth", "int", "2", "-"]


def test_show_builtin_network_has_schema_defaults_and_dims(cli):
    data = json.loads(cli("components", "show", "network", "generic_unet", "--json").stdout)
    assert data["origin"]["builtin"] is True and data["origin"]["dist"] == "segforge"
    assert set(data["dims"]) <= {2, 3} and data["dims"]
    assert "recommended_trainer" in data
    schema = data["params"]["schema"]
    assert schema["type"] == "object" and schema["properties"]
    if data["params"]["defaults"] is not None:
        assert set(data["params"]["defaults"]) <= set(schema["properties"])


@pytest.mark.parametrize(
    ("args", "error", "hint"),
    [
        (
            ("network", "tinynte"),
            "error: unknown network 'tinynte' (available: generic_unet, residual_unet, tinynet, tinynet_strict)",
            "hint: did you mean 'tinynet'? `segforge components list --kind network` shows what is installed",
        ),
        (
            ("los", "dice"),
            "error: unknown component kind 'los' (kinds: network, trainer, loss, planner, normalization, "
            "image_io, callback)",
            "hint: did you mean 'loss'?",
        ),
    ],
)
def test_show_unknown_is_one_line_with_nearest_match(cli, fake_dists, args, error, hint, monkeypatch):
    monkeypatch.setattr("segforge.plugins.BUILTIN_PLUGINS", (("builtin.networks", "segforge.builtins.networks"),))
    fake_dists("segforge-tiny", tiny_plugin(), plugin="tiny")
    result = cli("components", "show", *args)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [error, hint]
