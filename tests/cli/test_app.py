"""The root app: --version (fast path), help, -p options and the one error handler."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from segforge_cli_fakes import BROKEN_PLUGIN, tiny_plugin
from typer.main import get_command
from typer.testing import CliRunner

from segforge._version import __version__
from segforge.cli.app import _split_plugin_options, build_app

BROKEN_ERROR = "error: plugin 'broken' (segforge-broken 0.3) failed to import: ImportError: needs libfoo"
BROKEN_HINT = (
    "hint: disable it with SEGFORGE_DISABLE_PLUGINS=broken (or `-p no:broken`), or fix or uninstall segforge-broken"
)


def python(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the test interpreter in a clean subprocess (no colours, no user plugins)."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "COLUMNS", "SEGFORGE_DEBUG")}
    full_env.update({"SEGFORGE_DISABLE_PLUGIN_AUTOLOAD": "1", **(env or {})})
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=120)


# -- --version --------------------------------------------------------------------------


def test_version(cli):
    result = cli("--version")
    assert (result.exit_code, result.stdout, result.stderr) == (0, f"segforge {__version__}\n", "")


def test_version_through_the_app_without_the_fast_path():
    result = CliRunner().invoke(build_app(), ["--version"])
    assert (result.exit_code, result.stdout) == (0, f"segforge {__version__}\n")


@pytest.mark.parametrize("args", [("--version", "-v"), ("-v", "--version"), ("--version", "--verbose")])
def test_version_verbose_shows_the_details(cli, args):
    result = cli(*args)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["segforge", __version__]
    assert any(line.split()[:1] == ["torch"] for line in lines)
    assert "folders" in lines and "plugins" in lines
    assert any("builtin.networks" in line and " ok " in line for line in lines)


def test_version_fast_path_imports_no_torch_and_loads_no_plugins():
    code = (
        "import sys; from segforge.cli.app import main; main(['--version']); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch' or m.startswith('segforge.builtins')))"
    )
    result = python("-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"segforge {__version__}\n[]\n"


def test_building_the_app_imports_no_torch():
    """Every command module (anyone's) must keep torch out of its module level."""
    code = "import sys; from segforge.cli.app import build_app; build_app(); print('torch' in sys.modules)"
    result = python("-c", code)
    assert (result.returncode, result.stdout) == (0, "False\n"), result.stderr


def test_python_dash_m_segforge_version(tmp_path):
    result = python("-m", "segforge", "--version", cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"segforge {__version__}\n", "")


# -- help -------------------------------------------------------------------------------


def test_help_lists_exactly_the_registered_commands_and_each_works(cli):
    names = sorted(get_command(build_app()).commands)
    assert {"info", "plugins", "components"} <= set(names)
    result = cli("--help")
    assert result.exit_code == 0
    assert "Usage: segforge" in result.stdout
    # a name starts right after "│ "; wrapped description lines start with more spaces (their first word may
    # be a command name too, e.g. "ensemble" in predict's help)
    lines = result.stdout.splitlines()
    listed = [line.split()[1] for line in lines if line.startswith("│ ") and line[2:3] != " " and "─" not in line]
    commands = [word for word in listed if word in names]
    assert sorted(commands) == names  # every registered command is listed ...
    for name in names:  # ... and each one is real: its own help works
        sub = cli(name, "--help")
        assert sub.exit_code == 0 and f"Usage: segforge {name}" in sub.stdout, sub.stderr


def test_no_command_shows_help(cli):
    result = cli("-v")
    assert result.exit_code == 2 and "Usage: segforge" in result.stdout


def test_unknown_command_is_a_usage_error(cli):
    result = cli("trian")
    assert result.exit_code == 2
    assert "No such command 'trian'" in result.stderr


# -- -p options ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-p", "no:a", "-p", "mod.x", "info"], (["a"], ["mod.x"])),
        (["-pno:a", "-p=mod", "plugins", "-p", "ignored"], (["a"], ["mod"])),
        (["--version", "-v"], ([], [])),
        (["info", "-p", "no:a"], ([], [])),  # only root options, before the command
    ],
)
def test_split_plugin_options(args, expected):
    assert _split_plugin_options(args) == expected


@pytest.mark.parametrize("block", [["-p", "no:broken"], ["-pno:broken"]])
def test_minus_p_no_blocks_a_failing_plugin(cli, fake_dists, block):
    fake_dists("segforge-broken", BROKEN_PLUGIN, plugin="broken", version="0.3")
    fake_dists("segforge-tiny", tiny_plugin(), plugin="tiny")
    assert cli("components", "list").exit_code == 2
    result = cli(*block, "components", "list")
    assert result.exit_code == 0, result.stderr
    assert "tinynet" in result.stdout


def test_minus_p_loads_a_module_through_cli_runner(tmp_path, monkeypatch):
    (tmp_path / "explicit_cli_plugin.py").write_text(tiny_plugin("explicitnet"))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("SEGFORGE_DISABLE_PLUGIN_AUTOLOAD", "1")
    try:
        result = CliRunner().invoke(build_app(), ["-p", "explicit_cli_plugin", "components", "list", "--json"])
    finally:
        sys.modules.pop("explicit_cli_plugin", None)
    assert result.exit_code == 0, result.stderr
    assert '"plugin": "explicit_cli_plugin"' in result.stdout and '"name": "explicitnet"' in result.stdout


# -- the error handler -----------------------------------------------------------------


def test_failing_plugin_gives_error_and_hint_lines_exit_2(cli, fake_dists):
    fake_dists("segforge-broken", BROKEN_PLUGIN, plugin="broken", version="0.3")
    result = cli("components", "list")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [BROKEN_ERROR, BROKEN_HINT]
    assert result.stdout == ""


def test_cli_runner_gets_the_same_error_output(fake_dists):
    fake_dists("segforge-broken", BROKEN_PLUGIN, plugin="broken", version="0.3")
    result = CliRunner().invoke(build_app(), ["components", "list"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [BROKEN_ERROR, BROKEN_HINT]


def test_segforge_debug_shows_the_traceback(cli, fake_dists, monkeypatch):
    fake_dists("segforge-broken", BROKEN_PLUGIN, plugin="broken", version="0.3")
    assert "Traceback" not in cli("components", "list").stderr
    monkeypatch.setenv("SEGFORGE_DEBUG", "1")
    result = cli("components", "list")
    assert result.exit_code == 2
    assert "Traceback" in result.stderr and "require_ok" in result.stderr
    assert result.stderr.splitlines()[-2:] == [BROKEN_ERROR, BROKEN_HINT]


def test_failing_plugin_in_a_real_process(tmp_path):
    (tmp_path / "broken_segforge_plugin.py").write_text(BROKEN_PLUGIN)
    env = {"PYTHONPATH": str(tmp_path), "SEGFORGE_PLUGINS": "broken_segforge_plugin"}
    result = python("-m", "segforge", "components", "list", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: plugin 'broken_segforge_plugin' failed to import: ImportError: needs libfoo",
        "hint: disable it with SEGFORGE_DISABLE_PLUGINS=broken_segforge_plugin "
        "(or `-p no:broken_segforge_plugin`), or fix the plugin",
    ]
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


# -- plugin command groups ---------------------------------------------------------------

COMMANDS_PLUGIN = """
import typer
from segforge import hookimpl

cli = typer.Typer()

@cli.command()
def hello(who: str = "world"):
    print(f"hello {who}")

@cli.command()
def bye():
    print("bye")

@hookimpl
def segforge_add_commands(app):
    app.add_typer(cli, help="Tiny's commands.")
"""


def test_plugin_command_group_runs_through_main(cli, fake_dists):
    fake_dists("segforge-tiny", COMMANDS_PLUGIN, plugin="tiny")
    result = cli("tiny", "hello", "--who", "you")
    assert (result.exit_code, result.stdout) == (0, "hello you\n"), result.stderr
    result = cli("tiny", "--help")
    assert result.exit_code == 0 and "Tiny's commands." in result.stdout


def test_a_reader_that_leaves_early_gets_no_error_line():
    """`segforge plugins show ... | head -1`: a closed pipe is not a disk problem and needs no traceback."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "segforge", "components", "show", "network", "generic_unet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**__import__("os").environ, "COLUMNS": "400"},
    )
    proc.stdout.close()  # the reader leaves before segforge (still importing) writes: its output hits a closed pipe
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "Traceback" not in err and "error:" not in err, err
