"""``segforge plugins list`` and ``segforge plugins show``."""

from __future__ import annotations

import json

from segforge_cli_fakes import BROKEN_PLUGIN, cells, find_row, tiny_plugin

from segforge._version import __version__


def rows(stdout: str) -> dict[str, list[str]]:
    """The rows of the first table (below its header and rule), keyed by their first cell."""
    lines = stdout.split("\n\n")[0].splitlines()[2:]
    return {row[0]: row for row in map(cells, lines) if row[0]}


def test_list_table_hides_healthy_builtins_unless_all(cli, fake_dists):
    fake_dists("segforge-tiny", tiny_plugin(), plugin="tiny", version="1.2.3")
    result = cli("plugins", "list")
    assert result.exit_code == 0, result.stderr
    table = rows(result.stdout)
    assert list(table) == ["tiny"]
    assert table["tiny"] == ["tiny", "segforge-tiny", "1.2.3", "ok", "register_networks, report_header", "2"]
    assert "builtin plugin(s) hidden; `segforge plugins list --all` shows them" in result.stderr

    result = cli("plugins", "list", "--all")
    table = rows(result.stdout)
    assert table["builtin.networks"][:4] == ["builtin.networks", "segforge", __version__, "ok"]
    assert "tiny" in table
    assert "hidden" not in result.stderr


def test_list_json_without_all_lists_builtin_networks_with_origin_and_version(cli):
    result = cli("plugins", "list", "--json")
    assert result.exit_code == 0 and result.stderr == ""
    data = json.loads(result.stdout)  # nothing but JSON on stdout
    assert set(data) == {"plugins", "conflicts"}
    builtin = next(p for p in data["plugins"] if p["name"] == "builtin.networks")
    expected_keys = {"name", "module", "dist", "version", "builtin", "status", "error", "stage", "hooks", "components"}
    assert set(builtin) == expected_keys
    assert (builtin["dist"], builtin["version"], builtin["builtin"], builtin["status"]) == (
        "segforge",
        __version__,
        True,
        "ok",
    )
    networks = {c["name"]: c for c in builtin["components"] if c["kind"] == "network"}
    assert {"generic_unet", "residual_unet"} <= set(networks)
    assert all(c["version"] for c in networks.values())


def test_failed_plugin_is_listed_with_its_cause_without_failing_the_command(cli, fake_dists):
    fake_dists("segforge-broken", BROKEN_PLUGIN, plugin="broken", version="0.3")
    fake_dists("segforge-tiny", tiny_plugin(), plugin="tiny")
    result = cli("plugins", "list")
    assert result.exit_code == 0, result.stderr
    assert rows(result.stdout)["broken"] == ["broken", "segforge-broken", "0.3", "failed", "-", "0"]
    problems = result.stdout.split("problems\n")[1]
    assert find_row(problems, "broken") == ["broken", "import", "ImportError: needs libfoo"]

    data = json.loads(cli("plugins", "list", "--json").stdout)
    broken = next(p for p in data["plugins"] if p["name"] == "broken")
    assert (broken["status"], broken["stage"], broken["error"]) == ("failed", "import", "ImportError: needs libfoo")
    assert next(p for p in data["plugins"] if p["name"] == "tiny")["status"] == "ok"


def test_conflicts_are_shown_in_table_and_json(cli, fake_dists):
    fake_dists("segforge-one", tiny_plugin("samenet"), plugin="one")
    fake_dists("segforge-two", tiny_plugin("samenet"), plugin="two", version="2.0")
    result = cli("plugins", "list")
    assert result.exit_code == 0
    problems = result.stdout.split("problems\n")[1]
    row = find_row(problems, "one, two")
    assert row[1] == "duplicate name" and row[2].startswith("network 'samenet' is registered twice")

    conflicts = json.loads(cli("plugins", "list", "--json").stdout)["conflicts"]
    assert len(conflicts) == 2  # samenet and samenet_strict
    first = conflicts[0]
    assert (first["kind"], first["name"], first["plugins"]) == ("network", "samenet", ["one", "two"])
    assert "(segforge-one 1.0)" in first["message"] and "(segforge-two 2.0)" in first["message"]
    assert "-p no:two" in first["hint"]


def test_show_plugin(cli, fake_dists):
    module = fake_dists("segforge-tiny", tiny_plugin(), plugin="tiny", version="1.2.3")
    result = cli("plugins", "show", "tiny")
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert find_row(text, "module") == ["module", module]
    assert find_row(text, "distribution") == ["distribution", "segforge-tiny"]
    assert find_row(text, "version") == ["version", "1.2.3"]
    assert find_row(text, "status") == ["status", "ok"] and find_row(text, "builtin") == ["builtin", "no"]
    assert find_row(text, "hooks") == ["hooks", "segforge_register_networks, segforge_report_header"]
    components = text.split("components\n")[1]
    assert find_row(components, "kind") == ["kind", "name", "version", "summary"]
    networks = {row[1]: row for row in map(cells, components.splitlines()) if row[0] == "network"}
    assert networks == {
        "tinynet": ["network", "tinynet", "2.5", "A tiny network for CLI tests."],
        "tinynet_strict": ["network", "tinynet_strict", "2.5", "A network whose Params have a required field."],
    }


def test_show_failed_plugin_shows_stage_and_error(cli, fake_dists):
    fake_dists("segforge-broken", BROKEN_PLUGIN, plugin="broken", version="0.3")
    result = cli("plugins", "show", "broken")
    assert result.exit_code == 0
    assert find_row(result.stdout, "status") == ["status", "failed"]
    assert find_row(result.stdout, "stage") == ["stage", "import"]
    assert find_row(result.stdout, "error") == ["error", "ImportError: needs libfoo"]


def test_show_plugin_json_includes_its_conflicts(cli, fake_dists):
    fake_dists("segforge-one", tiny_plugin("samenet"), plugin="one")
    fake_dists("segforge-two", tiny_plugin("samenet"), plugin="two")
    data = json.loads(cli("plugins", "show", "two", "--json").stdout)
    assert data["name"] == "two" and data["components"] == []
    assert [c["name"] for c in data["conflicts"]] == ["samenet", "samenet_strict"]
    one = json.loads(cli("plugins", "show", "one", "--json").stdout)
    assert one["components"] == [
        {"kind": "network", "name": "samenet", "version": "2.5"},
        {"kind": "network", "name": "samenet_strict", "version": "2.5"},
    ]


def test_show_unknown_plugin_is_one_line_with_did_you_mean(cli, fake_dists):
    fake_dists("segforge-tiny", tiny_plugin(), plugin="tiny")
    result = cli("plugins", "show", "tyni")
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: no plugin named 'tyni' (installed: builtin.networks")
    assert lines[1] == "hint: did you mean 'tiny'?"
    assert len(lines) == 2 and result.stdout == ""
