"""Component registries: staging through a plugin's view, origins, lookups, validation."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from segforge.errors import ComponentNotFoundError, ConfigError, DuplicateComponentError, PluginError
from segforge.registry import (
    KINDS,
    Entry,
    Origin,
    RegistrarView,
    Registries,
    parse_component_params,
    validate_component,
)

TINY = Origin("tiny", "segforge-tiny", "1.2.3")
OTHER = Origin("other", "segforge-other", "0.9")
BUILTIN = Origin("builtin.networks", "segforge", "0.1.0", builtin=True)


class Base:
    """Docstring of the base class, which subclasses must not inherit as their summary."""


class FakeNet(Base):
    """A fake network builder.

    Second paragraph.
    """

    class Params(BaseModel):
        width: int = 8

    version = "3.1"
    dims = (2, 3)

    def __init__(self, name: str) -> None:
        self.name = name

    def constraints(self, params): ...
    def propose(self, request): ...
    def build(self, params, in_channels, num_classes, deep_supervision=True): ...
    def estimate_memory(self, *args): ...


class Undocumented(FakeNet):
    __doc__ = None


def fill(registries: Registries, origin: Origin, *names: str) -> RegistrarView:
    """Stage ``names`` through a plugin's view and commit them, as the manager does."""
    view = RegistrarView("network", origin)
    for name in names:
        view.add(FakeNet(name))
    for entry in view.staged:
        registries.network._commit(entry)
    return view


def test_add_and_get_keep_the_origin():
    registries = Registries()
    view = fill(registries, TINY, "generic_unet", "residual_unet")
    assert [e.name for e in view.staged] == ["generic_unet", "residual_unet"]
    net = registries.network.get("generic_unet")
    assert isinstance(net, FakeNet) and net.name == "generic_unet"
    entry = registries["network"].entry("generic_unet")
    assert (entry.kind, entry.origin, entry.version) == ("network", TINY, "3.1")
    assert entry.summary == "A fake network builder."
    assert entry.doc.startswith("A fake network builder.\n\nSecond paragraph.")
    assert "generic_unet" in registries.network and len(registries.network) == 2
    assert [e.name for e in registries.entries("network")] == ["generic_unet", "residual_unet"]
    assert registries.entries() == registries.entries("network")  # other kinds are empty


def test_add_returns_the_component_and_accepts_an_explicit_name():
    view = RegistrarView("network", TINY)
    net = FakeNet("generic_unet")
    assert view.add(net, name="alias_net") is net
    assert view.staged[0].name == "alias_net"


def test_names_with_wildcards():
    registries = Registries()
    fill(registries, TINY, "generic_unet", "residual_unet", "swin_unetr", "unet_small")
    assert registries.network.names() == ["generic_unet", "residual_unet", "swin_unetr", "unet_small"]
    assert registries.network.names("*unet") == ["generic_unet", "residual_unet"]
    assert registries.network.names("unet*") == ["unet_small"]
    assert registries.network.names("*") == registries.network.names()
    assert registries.network.names("nothing*") == []


def test_unknown_name_lists_available_and_suggests_nearest():
    registries = Registries()
    fill(registries, TINY, "generic_unet", "residual_unet")
    with pytest.raises(ComponentNotFoundError) as excinfo:
        registries.network.get("generic_unte")
    err = excinfo.value
    assert err.message == "unknown network 'generic_unte' (available: generic_unet, residual_unet)"
    assert err.hint.startswith("did you mean 'generic_unet'? ")
    assert "segforge components list --kind network" in err.hint
    assert err.exit_code == 2


def test_unknown_name_without_a_close_match_has_no_suggestion():
    registries = Registries()
    with pytest.raises(ComponentNotFoundError) as excinfo:
        registries.loss.get("xyz")
    assert excinfo.value.message == "unknown loss 'xyz' (available: none)"
    assert "did you mean" not in excinfo.value.hint


def test_unknown_kind_suggests_the_nearest():
    registries = Registries()
    with pytest.raises(ComponentNotFoundError) as excinfo:
        registries["netwrk"]
    assert excinfo.value.message.startswith("unknown component kind 'netwrk' (kinds: network, trainer")
    assert excinfo.value.hint == "did you mean 'network'?"
    with pytest.raises(AttributeError):
        registries.netwrk  # noqa: B018
    assert registries.kinds() == list(KINDS)


def test_duplicate_name_names_both_origins():
    registries = Registries()
    fill(registries, BUILTIN, "generic_unet")
    with pytest.raises(DuplicateComponentError) as excinfo:
        fill(registries, TINY, "generic_unet")
    err = excinfo.value
    assert err.message == (
        "network 'generic_unet' is registered twice: by builtin plugin 'builtin.networks' (segforge 0.1.0) "
        "and by plugin 'tiny' (segforge-tiny 1.2.3)"
    )
    assert "-p no:tiny" in err.hint and "SEGFORGE_DISABLE_PLUGINS=tiny" in err.hint
    assert (err.kind, err.name, err.origins) == ("network", "generic_unet", (BUILTIN, TINY))
    assert registries.network.entry("generic_unet").origin == BUILTIN


def test_same_name_twice_from_one_plugin_is_refused():
    view = RegistrarView("network", TINY)
    view.add(FakeNet("generic_unet"))
    with pytest.raises(
        PluginError, match="plugin 'tiny' \\(segforge-tiny 1.2.3\\) registered network 'generic_unet' twice"
    ):
        view.add(FakeNet("generic_unet"))


def test_component_missing_attributes_names_the_plugin():
    class Half:
        name = "half_net"
        version = "1"

    with pytest.raises(PluginError) as excinfo:
        RegistrarView("network", TINY).add(Half())
    assert excinfo.value.message == (
        "plugin 'tiny' (segforge-tiny 1.2.3) registered network 'half_net' without "
        "Params, dims, constraints, propose, build, estimate_memory"
    )
    assert "docs/plugins/writing.md" in excinfo.value.hint


def test_component_without_name_attribute_reports_the_missing_name():
    class Nameless:
        version = "1"

    with pytest.raises(PluginError, match="registered loss 'Nameless' without name, Params, build"):
        RegistrarView("loss", OTHER).add(Nameless())


@pytest.mark.parametrize("bad", ["GenericUNet", "1net", "my net", "", "_private"])
def test_bad_component_name_is_refused(bad):
    with pytest.raises(PluginError) as excinfo:
        RegistrarView("network", TINY).add(FakeNet(bad))
    assert (
        excinfo.value.message == f"plugin 'tiny' (segforge-tiny 1.2.3) registered a network with invalid name {bad!r}"
    )
    assert "lower case" in excinfo.value.hint


def test_validate_component_accepts_dotted_and_dashed_names():
    validate_component("network", FakeNet("nnunet.generic-v2"), "nnunet.generic-v2", TINY)


def test_origin_describe():
    assert BUILTIN.describe() == "builtin plugin 'builtin.networks' (segforge 0.1.0)"
    assert TINY.describe() == "plugin 'tiny' (segforge-tiny 1.2.3)"
    assert Origin("my_module").describe() == "plugin 'my_module' (no distribution)"
    assert TINY.as_dict() == {"plugin": "tiny", "dist": "segforge-tiny", "version": "1.2.3", "builtin": False}


def test_summary_is_never_inherited_or_taken_from_type():
    assert Entry("network", "x", Undocumented("x"), TINY).summary == ""
    # a class registered as the component (not an instance): its own doc, not type's
    assert Entry("network", "x", FakeNet, TINY).summary == "A fake network builder."
    assert Entry("network", "x", Undocumented, TINY).doc == ""


def test_unknown_kind_for_a_registry_is_a_programming_error():
    from segforge.registry import ComponentRegistry

    with pytest.raises(ValueError, match="unknown component kind 'widget'"):
        ComponentRegistry("widget")


class _WidthParams(BaseModel):
    width: int = 8


def test_parse_component_params_validates_or_names_component_and_field():
    assert parse_component_params("network", "tinynet", _WidthParams, {"width": 4}) == _WidthParams(width=4)
    with pytest.raises(ConfigError) as excinfo:
        parse_component_params("network", "tinynet", _WidthParams, {"width": "wide"})
    assert excinfo.value.message == (
        "network 'tinynet' params: width: Input should be a valid integer, unable to parse string as an integer"
    )
    assert excinfo.value.hint == "`segforge components show network tinynet` lists the valid params"
