"""The trainer contract kit fails, naming the expectation, on trainers that break the contract; a trainer
that overrides make_schedule with its own schedule class passes the restore check."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from types import SimpleNamespace

import pytest

from segforge.testing.trainer_contract import (
    check_trainer_schedule,
    check_trainer_state_roundtrip,
    check_trainer_steps,
    check_trainer_train_step,
    make_trainer,
    prepare_contract_task,
)
from segforge.training.trainer import DefaultTrainer


@dataclass
class CosineSchedule:
    """A plugin's own schedule: cosine decay, with the Schedule interface."""

    initial_lr: float
    total: int

    def lr_at(self, iteration: int) -> float:
        return 0.5 * self.initial_lr * (1 + math.cos(math.pi * min(iteration, self.total) / self.total))

    def retarget(self, iteration: int, new_total: int) -> None:
        self.total = max(new_total, iteration)

    def state_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict) -> CosineSchedule:
        return cls(**state)


class CosineTrainer(DefaultTrainer):
    name = "cosine"

    def make_schedule(self):
        return CosineSchedule(self.params.initial_lr, self.total_iterations)


class WrongStep(DefaultTrainer):
    name = "wrong_step"

    def train_step(self):  # the loop passes the batch
        return 0.0


class FrozenTrainer(DefaultTrainer):
    name = "frozen"

    def train_step(self, batch):
        return float("nan")


def test_a_step_with_the_wrong_signature_is_named():
    with pytest.raises(
        AssertionError, match=r"trainer 'wrong_step': step 'train_step\(self\)' cannot be called with 1"
    ):
        check_trainer_steps(WrongStep)


def test_a_schedule_without_the_interface_is_named():
    class LrOnly:
        def lr_at(self, iteration):
            return 0.01

    trainer = SimpleNamespace(make_schedule=LrOnly, total_iterations=10)
    with pytest.raises(AssertionError, match=r"the schedule \(LrOnly\) has no 'retarget'"):
        check_trainer_schedule(trainer)


def test_a_schedule_whose_state_does_not_rebuild_it_is_named():
    class Forgetful(CosineSchedule):
        def state_dict(self):
            return {"initial_lr": 1.0, "total": self.total}

    trainer = SimpleNamespace(make_schedule=lambda: Forgetful(0.01, 10), total_iterations=10)
    with pytest.raises(AssertionError, match=r"from_state\(state_dict\(\)\) gives rates \[1\.0"):
        check_trainer_schedule(trainer)


@pytest.fixture(scope="module")
def contract_task(tmp_path_factory):
    root = tmp_path_factory.mktemp("trainer_kit")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEGFORGE_RAW", str(root / "raw"))
        patch.setenv("SEGFORGE_PREPROCESSED", str(root / "pre"))
        prepare_contract_task(root)
    return root


@pytest.fixture
def env(contract_task, tmp_path, monkeypatch):
    monkeypatch.setenv("SEGFORGE_RAW", str(contract_task / "raw"))
    monkeypatch.setenv("SEGFORGE_PREPROCESSED", str(contract_task / "pre"))
    monkeypatch.setenv("SEGFORGE_RESULTS", str(tmp_path / "results"))


def test_own_schedule_survives_restore_and_a_nan_step_is_named(env):
    trainer = make_trainer(CosineTrainer)
    check_trainer_schedule(trainer)
    check_trainer_train_step(trainer)
    check_trainer_state_roundtrip(trainer, make_trainer(CosineTrainer))  # restore uses the schedule's own class
    frozen = make_trainer(FrozenTrainer)
    with pytest.raises(AssertionError, match=r"trainer 'frozen': train_step returned nan, expected a finite float"):
        check_trainer_train_step(frozen)
    for t in (trainer, frozen):
        t.log.close()
