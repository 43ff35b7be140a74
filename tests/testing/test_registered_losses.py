"""Every registered loss passes the loss contract kit (registering is enough to be checked)."""

from __future__ import annotations

import pytest

from segforge import get_registries, plugins
from segforge.testing import LossComponentContract


def _registered_loss_names() -> list[str]:
    names = get_registries().loss.names()
    plugins.reset_manager()  # collection must not leave a manager behind for the tests' isolation
    return names


LOSS_NAMES = _registered_loss_names()


def test_the_builtin_losses_are_registered():
    assert {"dc_ce", "dc_bce", "dice", "ce", "deep_supervision"} <= set(LOSS_NAMES)


@pytest.fixture(params=LOSS_NAMES)
def loss_name(request: pytest.FixtureRequest) -> str:
    return request.param


class TestRegisteredLoss(LossComponentContract):
    @pytest.fixture
    def component(self, loss_name: str):
        return get_registries().loss.get(loss_name)
