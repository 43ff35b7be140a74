"""Every registrar hook adds its kind of component, with the plugin's origin, through a fake plugin module.

The networks and losses registrars have their own tests in ``test_plugins.py``; this file
covers each ``segforge_register_*`` hook the same way, including the ones only builtins
implement today (trainers, planners, normalizations, image IO, callbacks), so a plugin
using any of them is known to work.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from segforge.errors import PluginError
from segforge.plugins import SegforgeManager
from segforge.registry import KINDS, Origin
from segforge.testing.fake_plugins import FakePlugins

PLUGIN_TEMPLATE = '''
from pydantic import BaseModel
from segforge import hookimpl


class Dummy:
    """A dummy KIND for tests."""

    class Params(BaseModel):
        value: int = 1

    name = "dummy_KIND"
    version = "0.3"
    file_endings = (".dummy",)

    def build(self, *args, **kwargs):
        return None


@hookimpl
def HOOK(registry):
    registry.add(Dummy())
'''

#: kind -> its registrar hook, spelled out so each hook name appears in a test (tests/test_hooks_documented.py)
REGISTRARS = {
    "trainer": "segforge_register_trainers",
    "planner": "segforge_register_planners",
    "normalization": "segforge_register_normalizations",
    "image_io": "segforge_register_image_io",
    "callback": "segforge_register_callbacks",
    "loss": "segforge_register_losses",
    "network": "segforge_register_networks",
}


@pytest.fixture
def write_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write plugin source into an importable module with a unique name; returns the name."""
    with FakePlugins(tmp_path, monkeypatch, prefix="fake_registrar_plugin_") as fakes:
        yield fakes.write_module


def plugin_source(kind: str) -> str:
    return PLUGIN_TEMPLATE.replace("KIND", kind).replace("HOOK", REGISTRARS[kind])


def test_every_component_kind_has_a_registrar_listed_here():
    assert {kind: hook for kind, (hook, _attrs) in KINDS.items()} == REGISTRARS


@pytest.mark.parametrize("kind", ["trainer", "planner", "normalization", "image_io", "callback"])
def test_registrar_hook_adds_a_component_with_the_plugins_origin(write_module, kind):
    module = write_module(plugin_source(kind))
    manager = SegforgeManager(builtins=(), autoload=False, extra=[module])
    info = manager.plugin(module)
    assert (info.status, info.hooks, info.components) == ("ok", [REGISTRARS[kind]], [(kind, f"dummy_{kind}")])
    entry = manager.require_ok()[kind].entry(f"dummy_{kind}")
    assert entry.origin == Origin(module)
    assert (entry.version, entry.summary) == ("0.3", f"A dummy {kind} for tests.")


def test_builtin_trainer_and_a_plugin_trainer_coexist(write_module):
    module = write_module(plugin_source("trainer"))
    registries = SegforgeManager(autoload=False, extra=[module]).require_ok()
    assert "dummy_trainer" in registries.trainer.names()
    assert registries.trainer.entry("dummy_trainer").origin.plugin == module


def test_callback_missing_params_fails_its_plugin_naming_the_attribute(write_module):
    code = """
    from segforge import hookimpl


    class Logger:
        name = "bad_logger"
        version = "1.0"


    @hookimpl
    def segforge_register_callbacks(registry):
        registry.add(Logger())
    """
    module = write_module(code)
    manager = SegforgeManager(builtins=(), autoload=False, extra=[module])
    info = manager.plugin(module)
    assert (info.status, info.stage) == ("failed", "segforge_register_callbacks")
    assert "registered callback 'bad_logger' without Params" in info.error
    with pytest.raises(PluginError, match="failed in segforge_register_callbacks"):
        manager.require_ok()
