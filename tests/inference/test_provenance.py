"""A model trained with a plugin network needs that plugin, at the same major version (issue 6, gap 4)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from segforge.errors import ComponentNotFoundError, ConfigError
from segforge.inference.model_loading import network_builder
from segforge.inference.provenance import check_major_version, compatible_series, major_version
from segforge.networks.generic_unet import GenericUNetBuilder
from segforge.registry import Entry, Origin

BUILDER = GenericUNetBuilder()


def _registries(dist: str | None, version: str | None):
    entry = Entry("network", "hyper_unet", BUILDER, Origin("hyperunet", dist, version))

    def lookup(name: str) -> Entry:
        if name != "hyper_unet":
            raise ComponentNotFoundError(f"unknown network '{name}'")
        return entry

    return SimpleNamespace(network=SimpleNamespace(entry=lookup))


def _spec(version: str | None = "1.4.2") -> dict:
    origin = {"plugin": "hyperunet", "dist": "segforge-hyperunet", "version": version, "builtin": False}
    return {"name": "hyper_unet", "version": "1.0", "params": {}, "origin": origin}


@pytest.mark.parametrize(
    ("text", "major"),
    [("1.2.3", 1), ("v2.0", 2), ("0.1.0.dev1", 0), ("10", 10), ("", None), (None, None), ("x1", None)],
)
def test_major_version(text, major):
    assert major_version(text) == major


@pytest.mark.parametrize("installed", ["1.4.2", "1.0.0", "1.9.0rc1"])
def test_same_major_version_is_accepted(installed):
    assert network_builder(_spec(), _registries("segforge-hyperunet", installed)) is BUILDER


def test_another_major_version_is_a_one_line_error_naming_package_and_version():
    with pytest.raises(ConfigError) as info:
        network_builder(_spec(), _registries("segforge-hyperunet", "2.0.0"))
    assert info.value.message == (
        "the model was trained with network 'hyper_unet' from segforge-hyperunet 1.4.2, but segforge-hyperunet "
        "2.0.0 is installed (another major version): install segforge-hyperunet==1.4.2"
    )
    assert info.value.hint.startswith("pip install 'segforge-hyperunet>=1.0,<2'")


@pytest.mark.parametrize(
    ("spec", "dist", "version"),
    [
        (_spec(), "segforge-otherdist", "7.0"),  # now provided by another distribution: not comparable
        (_spec(), "segforge-hyperunet", None),  # no version metadata installed
        (_spec(version=None), "segforge-hyperunet", "3.0"),  # nothing recorded in the checkpoint
    ],
)
def test_versions_are_compared_only_like_for_like(spec, dist, version):
    assert network_builder(spec, _registries(dist, version)) is BUILDER


@pytest.mark.parametrize(
    ("text", "series"),
    [("1.4.2", (1,)), ("2.0", (2,)), ("0.2.5", (0, 2)), ("0.2", (0, 2)), ("0.0.3", (0, 0, 3)), ("0", (0, 0, 0)),
     ("0.1.0.dev1", (0, 1)), ("nightly", None)],
)  # fmt: skip
def test_compatible_series_follows_semver(text, series):
    assert compatible_series(text) == series


@pytest.mark.parametrize(
    ("trained", "installed", "compatible"),
    [("0.1.0", "0.1.7", True), ("0.1.0", "0.2.0", False), ("0.0.3", "0.0.4", False), ("0.9.1", "1.0.0", False)],
)
def test_before_1_0_a_minor_release_may_break(trained, installed, compatible):
    spec, registries = _spec(version=trained), _registries("segforge-hyperunet", installed)
    if compatible:
        assert network_builder(spec, registries) is BUILDER
        return
    with pytest.raises(ConfigError) as info:
        network_builder(spec, registries)
    assert info.value.message.endswith(f"install segforge-hyperunet=={trained}")
    assert "\n" not in info.value.message


def test_a_0_x_mismatch_names_the_pip_range_of_its_series():
    with pytest.raises(ConfigError) as info:
        network_builder(_spec(version="0.2.5"), _registries("segforge-hyperunet", "0.3.0"))
    assert "(another 0.x release series)" in info.value.message
    assert info.value.hint.startswith("pip install 'segforge-hyperunet>=0.2.0,<0.3'")


def test_check_is_silent_for_other_distributions():
    check_major_version("n", "segforge-a", "1.0", Origin("p", "segforge-b", "9.0"))


def test_missing_plugin_message_itself_says_what_to_install():
    spec = {**_spec(), "name": "gone_unet"}
    with pytest.raises(ConfigError) as info:
        network_builder(spec, _registries("segforge-hyperunet", "1.4.2"))
    assert info.value.message.endswith("which is not installed: install segforge-hyperunet")
    assert "\n" not in info.value.message
