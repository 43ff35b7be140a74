"""Where a run's time goes (manifest ``time_spent``), driven by a fake clock: no timed assertions."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from segforge.training.time_account import KINDS, TimeAccount, instrument, time_spent


class FakeClock:
    """``now()`` for the account and ``elapsed()`` for the run, both moved only by ``advance``."""

    def __init__(self) -> None:
        self.t = 0.0

    def advance(self, seconds: float) -> None:
        self.t += seconds

    def now(self) -> float:
        return self.t

    def elapsed(self) -> float:
        return self.t


def test_nested_work_is_charged_once_to_the_innermost_kind():
    clock = FakeClock()
    account = TimeAccount(clock.now)
    with account.measure("probe"):
        clock.advance(2)
        with account.measure("training_steps"):  # a probe step that trains counts as training
            clock.advance(5)
        clock.advance(1)
    with account.measure("saving"):
        clock.advance(0.5)
    clock.advance(1.5)  # unmeasured: start-up, logging, idle
    report = account.report(elapsed_s=clock.elapsed(), budget_s=20)
    assert report["seconds"] == {"probe": 3.0, "training_steps": 5.0, "validation_batches": 0.0, "saving": 0.5,
                                 "end_predictions": 0.0, "other": 1.5}  # fmt: skip
    assert report["share"]["training_steps"] == pytest.approx(0.25)
    assert report["training_share"] == pytest.approx(5.5 / 20)
    assert report["share_of"] == "budget" and report["unused_s"] == pytest.approx(10.0)


def test_without_a_budget_shares_are_of_the_elapsed_time_and_sessions_add_up():
    clock = FakeClock()
    first = TimeAccount(clock.now)
    with first.measure("training_steps"):
        clock.advance(8)
    second = TimeAccount(clock.now)
    second.load_state_dict(first.state_dict())  # a continued run: the checkpoint's seconds
    with second.measure("validation_batches"):
        clock.advance(2)
    report = second.report(elapsed_s=10.0)
    assert report["share_of"] == "elapsed" and "unused_s" not in report
    assert report["seconds"]["training_steps"] == 8.0 and report["seconds"]["other"] == 0.0
    assert report["training_share"] == pytest.approx(0.8)
    with pytest.raises(ValueError, match="unknown kind of work 'sleep'"):
        with second.measure("sleep"):
            pass


class FakeTrainer:
    """The trainer methods the account times; each one moves the fake clock like the real step would."""

    def __init__(self, clock: FakeClock, budget_s: float) -> None:
        self.clock = clock
        self.budget = SimpleNamespace(budget_s=budget_s, before_training=lambda trainer: clock.advance(6.0))

    def train_batches(self, epoch, start):
        for _ in range(start, 50):
            self.clock.advance(0.1)  # making the batch in-process
            yield {}

    def train_step(self, batch):
        self.clock.advance(6.6)
        return 0.5

    def validate(self, epoch, iterations=None):
        self.clock.advance(2.7 * (iterations or 2))
        return {}

    def on_epoch_end(self, epoch, *args):
        self.save_checkpoint("checkpoint_latest.pt")
        self.clock.advance(0.3)  # plot, log

    def save_checkpoint(self, name):
        self.clock.advance(0.2)

    def write_manifest(self, status):
        self.clock.advance(0.05)

    def checkpoint_payload(self):
        return {"weights": 1}


def test_a_fold_all_budget_run_shows_its_training_share_in_the_account():
    """The issue's target read off the account: 10 minutes on a busy CPU (6.7 s per step), fold all, 2 validation
    batches per epoch, no end predictions -> at least 90 % of the budget in training steps and saving."""
    clock = FakeClock()
    clock.advance(4.0)  # interpreter start-up and building the trainer: "other"
    trainer = FakeTrainer(clock, budget_s=600)
    account = TimeAccount(clock.now)
    instrument(trainer, account)
    trainer.budget.before_training(trainer)
    for epoch in range(2):  # the loop's shape: batches, steps, validation, epoch end
        for batch in trainer.train_batches(epoch, 0 if epoch == 0 else 15):
            trainer.train_step(batch)
            clock.advance(0.01)  # log line, budget bookkeeping
        trainer.validate(epoch)
        trainer.on_epoch_end(epoch, 0.5, {}, 1.0)
    trainer.save_checkpoint("checkpoint_final.pt")
    trainer.write_manifest("finished")
    report = time_spent(trainer)
    assert set(report["seconds"]) == {*KINDS, "other"}
    assert report["seconds"]["training_steps"] == pytest.approx(85 * 6.7, abs=0.1)
    assert report["seconds"]["probe"] == pytest.approx(6.0) and report["seconds"]["validation_batches"] == 10.8
    assert report["seconds"]["saving"] == pytest.approx(2 * 0.5 + 0.2 + 0.05)
    assert 0.9 <= report["training_share"] < 1 and report["unused_s"] > 0
    assert sum(report["seconds"].values()) == pytest.approx(clock.elapsed(), abs=0.05)
    assert trainer.checkpoint_payload()["time_spent"]["training_steps"] == pytest.approx(569.5)
