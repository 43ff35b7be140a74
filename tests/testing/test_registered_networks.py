"""Every registered network passes the contract kit, in 2D and 3D (timm-style: registering is enough)."""

from __future__ import annotations

import pytest

from segforge import get_registries, plugins
from segforge.testing import NetworkBuilderContract


def _registered_network_names() -> list[str]:
    names = get_registries().network.names()
    plugins.reset_manager()  # collection must not leave a manager behind for the tests' isolation
    return names


NETWORK_NAMES = _registered_network_names()


def test_the_builtin_networks_are_registered():
    assert {"generic_unet", "residual_unet"} <= set(NETWORK_NAMES)
    entry = get_registries().network.entry("generic_unet")
    assert entry.origin.plugin == "builtin.networks" and entry.origin.builtin


@pytest.fixture(params=NETWORK_NAMES)
def network_name(request: pytest.FixtureRequest) -> str:
    return request.param


class TestRegisteredNetwork(NetworkBuilderContract):
    @pytest.fixture
    def builder(self, network_name: str):
        return get_registries().network.get(network_name)
