"""Every registered trainer passes the trainer contract kit (registering is enough to be checked)."""

from __future__ import annotations

import pytest

from segforge import get_registries, plugins
from segforge.testing import TrainerContract


def _registered_trainer_names() -> list[str]:
    names = get_registries().trainer.names()
    plugins.reset_manager()  # collection must not leave a manager behind for the tests' isolation
    return names


TRAINER_NAMES = _registered_trainer_names()


def test_the_default_trainer_is_registered():
    assert "default" in TRAINER_NAMES


@pytest.fixture(params=TRAINER_NAMES)
def trainer_name(request: pytest.FixtureRequest) -> str:
    return request.param


class TestRegisteredTrainer(TrainerContract):
    @pytest.fixture
    def trainer_class(self, trainer_name: str):
        return get_registries().trainer.get(trainer_name)
