"""The plugin manager, tested with fake distributions (nothing is installed, as pluggy/pytest do).

Each test writes plugin modules into ``tmp_path`` and makes ``importlib.metadata.distributions``
yield fake distributions whose ``segforge`` entry points name those modules.
"""

from __future__ import annotations

import importlib.metadata
import sys
import textwrap
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from segforge import plugins
from segforge._version import __version__
from segforge.errors import DuplicateComponentError, PluginError
from segforge.plugins import BUILTIN_PLUGINS, SegforgeManager
from segforge.registry import Origin
from segforge.testing.fake_plugins import FakePlugins

NETWORK_PLUGIN = '''
from pydantic import BaseModel
from segforge import hookimpl


class TinyNet:
    """A tiny network for tests.

    More text that is not the summary.
    """

    class Params(BaseModel):
        width: int = 8

    name = "NAME"
    version = "2.5"
    dims = (3,)

    def constraints(self, params):
        return None

    def propose(self, request):
        return self.Params()

    def build(self, params, in_channels, num_classes, deep_supervision=True):
        return None

    def estimate_memory(self, *args, **kwargs):
        return 0


@hookimpl
def segforge_register_networks(registry):
    registry.add(TinyNet())
'''


def network_plugin(name: str = "tinynet") -> str:
    """Source of a plugin module registering one network called ``name``."""
    return NETWORK_PLUGIN.replace('"NAME"', repr(name))


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The fake plugin modules and distributions of one test (see segforge.testing.fake_plugins)."""
    with FakePlugins(tmp_path, monkeypatch) as fakes:
        yield fakes


@pytest.fixture
def write_module(fakes: FakePlugins):
    """Write plugin source into an importable module with a unique name; returns the name."""
    return fakes.write_module


@pytest.fixture
def fake_dists(fakes: FakePlugins):
    """``add(dist, code, plugin=..., version=...)`` installs a fake distribution with one plugin."""
    fakes.hide_installed()
    return fakes.install


def manager(**kwargs) -> SegforgeManager:
    """A manager without segforge's builtins, so tests see only their fake plugins."""
    return SegforgeManager(builtins=(), **kwargs)


# -- loading and origins --------------------------------------------------------------


def test_entry_point_plugin_registers_network_with_origin(fake_dists):
    fake_dists("segforge-tiny", network_plugin(), plugin="tiny", version="1.2.3")
    m = manager()
    entry = m.registries.network.entry("tinynet")
    assert entry.origin == Origin("tiny", "segforge-tiny", "1.2.3", builtin=False)
    assert entry.version == "2.5"
    assert entry.summary == "A tiny network for tests."
    info = m.plugin("tiny")
    assert (info.status, info.dist, info.version) == ("ok", "segforge-tiny", "1.2.3")
    assert info.hooks == ["segforge_register_networks"]
    assert info.components == [("network", "tinynet")]
    assert m.require_ok().network.get("tinynet") is entry.component


def test_builtin_networks_plugin_is_listed_and_registers_like_any_plugin():
    assert ("builtin.networks", "segforge.builtins.networks") in BUILTIN_PLUGINS
    m = SegforgeManager(autoload=False)
    info = m.plugin("builtin.networks")
    assert (info.status, info.builtin, info.dist, info.version) == ("ok", True, "segforge", __version__)
    assert {"generic_unet", "residual_unet"} <= set(m.registries.network.names())
    origin = m.registries.network.entry("generic_unet").origin
    assert origin == Origin("builtin.networks", "segforge", __version__, builtin=True)


def test_same_distribution_listed_twice_is_loaded_once(fake_dists, monkeypatch):
    fake_dists("segforge-tiny", network_plugin(), plugin="tiny")
    dists = list(importlib.metadata.distributions())
    monkeypatch.setattr(importlib.metadata, "distributions", lambda **kw: iter(dists + dists))
    m = manager()
    assert [p.name for p in m.plugins] == ["tiny"]
    assert m.require_ok().network.names() == ["tinynet"]


def test_two_distributions_with_the_same_plugin_name_fail_the_second(fake_dists):
    fake_dists("segforge-one", network_plugin("net_one"), plugin="same")
    fake_dists("segforge-two", network_plugin("net_two"), plugin="same")
    m = manager()
    first, second = m.plugins
    assert first.status == "ok" and second.status == "failed"
    assert "already registered as 'same' by plugin 'same' (segforge-one 1.0)" in second.error
    assert m.registries.network.names() == ["net_one"]


# -- failures -------------------------------------------------------------------------


def test_plugin_whose_import_raises_is_recorded_and_require_ok_explains(fake_dists):
    fake_dists("segforge-broken", 'raise ImportError("needs libfoo")', plugin="broken", version="0.3")
    fake_dists("segforge-tiny", network_plugin(), plugin="tiny")
    m = manager()  # does not raise: the failure is recorded
    info = m.plugin("broken")
    assert (info.status, info.stage, info.error) == ("failed", "import", "ImportError: needs libfoo")
    assert m.plugin("tiny").status == "ok"
    with pytest.raises(PluginError) as excinfo:
        m.require_ok()
    err = excinfo.value
    assert err.message == "plugin 'broken' (segforge-broken 0.3) failed to import: ImportError: needs libfoo"
    assert "SEGFORGE_DISABLE_PLUGINS=broken" in err.hint and "-p no:broken" in err.hint
    assert "fix or uninstall segforge-broken" in err.hint
    assert err.exit_code == 2


def test_get_registries_raises_for_a_failed_plugin(fake_dists):
    fake_dists("segforge-broken", "import not_a_real_module_xyz", plugin="broken")
    with pytest.raises(PluginError, match="ModuleNotFoundError: No module named 'not_a_real_module_xyz'"):
        plugins.get_registries()


def test_hook_that_raises_fails_plugin_and_leaves_no_components(fake_dists):
    code = network_plugin() + textwrap.dedent(
        """
        @hookimpl
        def segforge_register_losses(registry):
            raise RuntimeError("boom")
        """
    )
    fake_dists("segforge-tiny", code, plugin="tiny")
    m = manager()
    info = m.plugin("tiny")
    assert (info.status, info.stage, info.error) == ("failed", "segforge_register_losses", "RuntimeError: boom")
    assert "tinynet" not in m.registries.network  # registered before the failing hook, then dropped
    assert info.components == []
    with pytest.raises(PluginError, match=r"plugin 'tiny' \(segforge-tiny 1.0\) failed in segforge_register_losses"):
        m.require_ok()


def test_invalid_component_fails_the_plugin_naming_it(fake_dists):
    code = """
        from segforge import hookimpl

        class NotANetwork:
            name = "half_net"
            version = "1"

        @hookimpl
        def segforge_register_networks(registry):
            registry.add(NotANetwork())
    """
    fake_dists("segforge-half", code, plugin="half")
    info = manager().plugin("half")
    assert info.status == "failed" and info.stage == "segforge_register_networks"
    assert info.error.startswith("PluginError: plugin 'half' (segforge-half 1.0) registered network 'half_net' without")
    assert "Params" in info.error and "build" in info.error


def test_misspelled_hook_fails_with_did_you_mean(fake_dists):
    code = """
        from segforge import hookimpl

        @hookimpl
        def segforge_register_netwroks(registry):
            pass
    """
    fake_dists("segforge-typo", code, plugin="typo")
    m = manager()
    info = m.plugin("typo")
    assert info.status == "failed"
    assert info.error == (
        "implements unknown hook 'segforge_register_netwroks' (did you mean 'segforge_register_networks'?)"
    )
    m.check_pending()  # the failed plugin was unregistered: nothing is left pending


def test_optional_unknown_hook_is_allowed(fake_dists):
    code = network_plugin() + textwrap.dedent(
        """
        @hookimpl(optionalhook=True)
        def segforge_future_hook():
            pass
        """
    )
    fake_dists("segforge-tiny", code, plugin="tiny")
    assert manager().plugin("tiny").status == "ok"


def test_hook_without_hookimpl_marker_fails_instead_of_being_ignored(fake_dists):
    fake_dists("segforge-plain", "def segforge_register_networks(registry):\n    pass\n", plugin="plain")
    info = manager().plugin("plain")
    assert info.status == "failed"
    assert info.error == "defines 'segforge_register_networks' without the @segforge.hookimpl decorator"


def test_hookimpl_with_specname_registers(fake_dists):
    code = network_plugin().replace(
        "@hookimpl\ndef segforge_register_networks(registry):",
        '@hookimpl(specname="segforge_register_networks")\ndef add_my_networks(registry):',
    )
    assert "add_my_networks" in code
    fake_dists("segforge-tiny", code, plugin="tiny")
    assert manager().require_ok().network.names() == ["tinynet"]


def test_wrong_hook_signature_is_a_one_line_register_failure(fake_dists):
    code = """
        from segforge import hookimpl

        @hookimpl
        def segforge_register_networks(reg):
            pass
    """
    fake_dists("segforge-sig", code, plugin="sig")
    info = manager().plugin("sig")
    assert info.status == "failed" and info.stage == "register"
    assert "\n" not in info.error and "reg" in info.error


def test_duplicate_network_names_give_one_error_naming_both_distributions(fake_dists):
    fake_dists("segforge-one", network_plugin("samenet"), plugin="one", version="1.0")
    fake_dists("segforge-two", network_plugin("samenet"), plugin="two", version="2.0")
    m = manager()
    assert len(m.conflicts) == 1
    with pytest.raises(DuplicateComponentError) as excinfo:
        m.require_ok()
    message = excinfo.value.message
    assert "network 'samenet' is registered twice" in message
    assert "plugin 'one' (segforge-one 1.0)" in message and "plugin 'two' (segforge-two 2.0)" in message
    assert m.registries.network.entry("samenet").origin.dist == "segforge-one"  # first one wins
    assert m.plugin("two").components == []


# -- blocking, autoload, explicit plugins -----------------------------------------------


@pytest.mark.parametrize("how", ["env", "option"])
def test_blocked_plugin_is_not_imported_and_require_ok_passes(fake_dists, monkeypatch, how):
    module = fake_dists("segforge-broken", 'raise ImportError("needs libfoo")', plugin="broken")
    fake_dists("segforge-tiny", network_plugin(), plugin="tiny")
    if how == "env":
        monkeypatch.setenv("SEGFORGE_DISABLE_PLUGINS", "other, broken")
        m = manager()
    else:
        m = manager(blocked=["broken"])
    assert m.plugin("broken").status == "blocked"
    assert module not in sys.modules
    assert m.require_ok().network.names() == ["tinynet"]


def test_blocking_a_plugin_removes_its_components(fake_dists):
    fake_dists("segforge-tiny", network_plugin(), plugin="tiny")
    m = manager(blocked=["tiny"])
    assert m.plugin("tiny").status == "blocked"
    assert "tinynet" not in m.require_ok().network


def test_cli_minus_p_no_blocks_a_builtin(monkeypatch):
    monkeypatch.setenv("SEGFORGE_DISABLE_PLUGIN_AUTOLOAD", "1")
    plugins.configure(blocked=["builtin.networks"])
    m = plugins.get_manager()
    assert m.plugin("builtin.networks").status == "blocked"
    assert "generic_unet" not in m.require_ok().network


def test_disable_autoload_skips_entry_points(fake_dists, monkeypatch):
    module = fake_dists("segforge-tiny", network_plugin(), plugin="tiny")
    monkeypatch.setenv("SEGFORGE_DISABLE_PLUGIN_AUTOLOAD", "1")
    m = manager()
    assert m.plugins == [] and module not in sys.modules
    assert m.autoload is False


@pytest.mark.parametrize("how", ["option", "env"])
def test_explicit_plugin_module_is_loaded(write_module, monkeypatch, how):
    module = write_module(network_plugin("explicit_net"))
    monkeypatch.setenv("SEGFORGE_DISABLE_PLUGIN_AUTOLOAD", "1")  # -p works without autoload
    if how == "env":
        monkeypatch.setenv("SEGFORGE_PLUGINS", module)
        m = manager()
    else:
        m = manager(extra=[module])
    info = m.plugin(module)
    assert (info.status, info.module, info.dist) == ("ok", module, None)
    assert m.registries.network.entry("explicit_net").origin == Origin(module)


def test_explicit_name_of_loaded_entry_point_is_not_loaded_twice(fake_dists):
    fake_dists("segforge-tiny", network_plugin(), plugin="tiny")
    m = manager(extra=["tiny"])
    assert [p.name for p in m.plugins] == ["tiny"] and m.plugin("tiny").status == "ok"


def test_explicit_module_that_does_not_exist_fails(monkeypatch):
    m = manager(extra=["no_such_segforge_plugin"], autoload=False)
    info = m.plugin("no_such_segforge_plugin")
    assert (info.status, info.stage) == ("failed", "import")
    with pytest.raises(PluginError, match="plugin 'no_such_segforge_plugin' failed to import"):
        m.require_ok()


# -- queries ---------------------------------------------------------------------------


def test_unknown_plugin_name_suggests_the_nearest(fake_dists):
    fake_dists("segforge-tiny", network_plugin(), plugin="tiny")
    with pytest.raises(PluginError) as excinfo:
        manager().plugin("tiyn")
    assert excinfo.value.message == "no plugin named 'tiyn' (installed: tiny)"
    assert excinfo.value.hint == "did you mean 'tiny'?"


def test_check_pending_names_a_hook_without_spec(write_module):
    m = manager(autoload=False)
    m.check_pending()  # healthy: no error
    module = write_module("from segforge import hookimpl\n\n@hookimpl\ndef segforge_unheard_of():\n    pass\n")
    m.pm.register(importlib.import_module(module), name="sneaky")  # bypasses the manager's own check
    with pytest.raises(PluginError, match="segforge_unheard_of") as excinfo:
        m.check_pending()
    assert "spelling" in excinfo.value.hint


def test_report_header_lines_are_prefixed_with_the_plugin(fake_dists):
    one = 'from segforge import hookimpl\n\n@hookimpl\ndef segforge_report_header():\n    return "cuda kernels 1.2"\n'
    two = 'from segforge import hookimpl\n\n@hookimpl\ndef segforge_report_header():\n    return ["a", "b"]\n'
    bad = 'from segforge import hookimpl\n\n@hookimpl\ndef segforge_report_header():\n    raise ValueError("no")\n'
    none = "from segforge import hookimpl\n\n@hookimpl\ndef segforge_report_header():\n    return None\n"
    for name, code in [("one", one), ("two", two), ("bad", bad), ("none", none)]:
        fake_dists(f"segforge-{name}", code, plugin=name)
    assert manager().report_header() == [
        "one: cuda kernels 1.2",
        "two: a",
        "two: b",
        "bad: report header failed: ValueError: no",
    ]


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
    app.add_typer(cli, name=GROUP, help="Tiny's commands.")
"""


def test_add_commands_adds_a_group_named_after_the_plugin(fake_dists):
    fake_dists("segforge-tiny", COMMANDS_PLUGIN.replace("GROUP", "'tiny'"), plugin="tiny")
    m = manager()
    app = typer.Typer()
    app.command("info")(lambda: None)
    m.add_commands(app)
    assert m.plugin("tiny").status == "ok"
    assert [g.name for g in app.registered_groups] == ["tiny"]
    result = CliRunner().invoke(app, ["tiny", "hello", "--who", "segforge"])
    assert result.exit_code == 0 and result.stdout == "hello segforge\n"


@pytest.mark.parametrize(
    ("group", "error"),
    [
        ("'train'", "plugin 'tiny' tried to add command group 'train'"),
        ("None", "plugin 'info' would replace the existing command 'info'"),
    ],
)
def test_add_commands_refuses_other_names(fake_dists, group, error):
    plugin = "tiny" if group != "None" else "info"
    fake_dists("segforge-tiny", COMMANDS_PLUGIN.replace("GROUP", group), plugin=plugin)
    m = manager()
    app = typer.Typer()
    app.command("info")(lambda: None)
    m.add_commands(app)
    info = m.plugin(plugin)
    assert info.status == "failed" and info.stage == "segforge_add_commands"
    assert info.error == f"PluginError: {error}"
    assert app.registered_groups == []


def test_configure_keeps_the_manager_for_the_same_options(monkeypatch):
    monkeypatch.setenv("SEGFORGE_DISABLE_PLUGIN_AUTOLOAD", "1")
    plugins.configure(blocked=["x"], extra=[])
    first = plugins.get_manager()
    plugins.configure(blocked=["x"], extra=[])
    assert plugins.get_manager() is first
    plugins.configure(blocked=[], extra=[])
    assert plugins.get_manager() is not first
