"""The budget controller against a fake clock and a speed model: probe, sizing, re-sizing, GPU stand-in.

No real time is measured: a fake trainer "trains" by advancing the fake clock by the seconds
the speed model gives for each step, and the controller sees only that clock.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from segforge.training import budget as budget_module
from segforge.training.budget import BudgetController
from segforge.training.budget_plan import Option, Plan
from segforge.training.budget_setup import budget_batch
from segforge.training.clock import Clock
from segforge.training.device import PrecisionChoice
from segforge.training.overrides import apply_overrides
from segforge.training.params import BudgetParams, TrainerParams
from segforge.training.prediction_cost import EndPredictionCost
from segforge.training.schedule import PolySchedule
from segforge.training.state import TrainingState

EPOCH_END_S = 3.0  # validation batches + checkpoint of one epoch


class FakeClock(Clock):
    def __init__(self) -> None:
        super().__init__()
        self.t = 0.0

    def session(self) -> float:
        return self.t


class FakeTrainer:
    def __init__(self, params: TrainerParams, device: str = "cpu", precision: str = "fp32") -> None:
        self.params = params
        self.state = TrainingState()
        self.total_iterations = params.epochs * params.iterations_per_epoch
        self.schedule = PolySchedule(params.initial_lr, self.total_iterations, params.poly_exponent, 1)
        self.device = SimpleNamespace(type=device)
        self.context = SimpleNamespace(request=SimpleNamespace(fp32=False))
        self.precision = PrecisionChoice(precision, device)
        self.batch_size = params.batch_size or 2
        self.lines: list[str] = []
        self.log = SimpleNamespace(line=self.lines.append, warning=lambda t: self.lines.append(f"warning: {t}"))

    def write_manifest(self, status: str) -> None:
        pass

    def done(self) -> bool:
        return self.state.iteration >= self.total_iterations

    # the budget changes the run only through these (segforge.training.protocols.Trainer)
    def resize(self, total: int, *, retarget: bool = True) -> None:
        self.total_iterations = total
        if retarget:
            self.schedule.retarget(self.state.iteration, total)

    def set_precision(self, name: str) -> None:
        self.precision = PrecisionChoice(name, self.device.type)

    def set_threads(self, threads: int) -> None:
        self.params = self.params.model_copy(update={"threads": threads})


def make_run(budget_s: float, device: str = "cpu", plan: Plan | None = None, **budget_params):
    clock = FakeClock()
    controller = BudgetController(budget_s, BudgetParams(**budget_params), clock)
    controller.plan = plan
    controller._end_cost = EndPredictionCost(0, 0, 0.0)  # no predictions after training in these runs
    params = controller.prepare_params(TrainerParams(threads=2 if device == "cpu" else None), device, 7)
    precision = "fp16" if device == "cuda" else "fp32"
    return controller, FakeTrainer(params, device, precision), clock


def simulate(controller: BudgetController, trainer: FakeTrainer, clock: FakeClock, step_s) -> list[float]:
    """The loop of training/loop.py in miniature; ``step_s(trainer, now)`` is the speed model. The LR of each step."""
    controller.before_training(trainer)
    lrs = []
    while not trainer.done():
        for _ in range(trainer.params.iterations_per_epoch):
            lrs.append(trainer.schedule.lr_at(trainer.state.iteration))
            clock.t += step_s(trainer, clock.t)
            trainer.state.iteration += 1
            controller.after_iteration(trainer)
            if trainer.done():
                break
        clock.t += EPOCH_END_S
        trainer.state.epoch += 1
        controller.after_epoch(trainer)
    return lrs


@pytest.fixture(autouse=True)
def quiet_two_core_cpu(monkeypatch):
    monkeypatch.setattr(budget_module, "available_cores", lambda: 2)
    monkeypatch.setattr(budget_module, "other_load", lambda: 0.1)
    monkeypatch.setattr(budget_module, "cpu_has_bf16", lambda: False)
    monkeypatch.delenv("SEGFORGE_DISABLE_BF16", raising=False)


def annealed(controller, trainer, lrs) -> None:
    """The schedule ends where training ended, with its LR decayed to (nearly) 0, and no hard stop."""
    assert trainer.state.iteration == trainer.schedule.total == trainer.total_iterations
    assert lrs[-1] < 0.01 * 0.05 and not any(r.get("hard_stop") for r in controller.replans)


def test_steady_speed_fills_the_budget_and_anneals():
    controller, trainer, clock = make_run(600)
    lrs = simulate(controller, trainer, clock, lambda t, now: 5.0 if t.state.iteration == 0 else 1.0)
    annealed(controller, trainer, lrs)
    assert 0.9 * 600 <= clock.t <= 600
    assert controller.decisions["schedule"]["total_iterations"] >= 500


def test_a_speed_drop_mid_epoch_shrinks_the_schedule_at_once_and_still_anneals():
    """Another process starts at t = 200 s and makes every step 2.5x slower."""
    controller, trainer, clock = make_run(600)
    lrs = simulate(controller, trainer, clock, lambda t, now: 1.0 if now < 200 else 2.5)
    annealed(controller, trainer, lrs)
    slower = [r for r in controller.replans if r.get("why") == "slower"]
    assert slower and slower[0]["new"] < slower[0]["old"]
    assert clock.t <= 600
    assert any("(slower) -> re-sized" in line for line in trainer.lines)


def test_a_speed_rise_grows_the_schedule_after_the_epoch_with_a_continuous_lr():
    """The other process stops at t = 150 s: steps go from 2 s to 1 s."""
    controller, trainer, clock = make_run(600)
    lrs = simulate(controller, trainer, clock, lambda t, now: 2.0 if now < 150 else 1.0)
    annealed(controller, trainer, lrs)
    grown = [r for r in controller.replans if r["new"] > r["old"]]
    assert grown, controller.replans
    at = grown[0]["at_iteration"]
    assert lrs[at] == pytest.approx(lrs[at - 1], rel=0.02)  # no jump where the schedule was re-anchored
    assert clock.t >= 0.9 * 600  # the faster machine's time is used, not left over


def test_the_probe_picks_bf16_from_training_steps_that_count(monkeypatch):
    monkeypatch.setattr(budget_module, "cpu_has_bf16", lambda: True)
    controller, trainer, clock = make_run(600)
    seen = []

    def speed(t, now):
        seen.append(t.precision.name)
        return {"bf16": 0.5, "fp32": 1.0}[t.precision.name]

    lrs = simulate(controller, trainer, clock, speed)
    assert seen[:4] == ["bf16", "bf16", "fp32", "fp32"] and set(seen[4:]) == {"bf16"}
    probe = controller.measurements["probe"]
    assert probe["steps"] == 4 and probe["steps_count_as_training"] and probe["spent_s"] == pytest.approx(2.5)
    assert controller.decisions["precision"]["value"] == "bf16"
    annealed(controller, trainer, lrs)
    assert trainer.state.iteration > 1000  # the probe's 4 steps are part of the run, not thrown away


def test_bf16_disabled_by_the_environment_never_runs_bf16(monkeypatch):
    monkeypatch.setattr(budget_module, "cpu_has_bf16", lambda: True)
    monkeypatch.setenv("SEGFORGE_DISABLE_BF16", "1")
    controller, trainer, clock = make_run(120)
    seen = set()
    simulate(controller, trainer, clock, lambda t, now: seen.add(t.precision.name) or 1.0)
    assert seen == {"fp32"}
    assert "SEGFORGE_DISABLE_BF16=1" in controller.decisions["precision"]["why"]


def test_a_loaded_machine_spends_at_most_five_percent_probing(monkeypatch):
    """The field report: busy 2-core CPU, 47 s per step, 4-minute budget."""
    monkeypatch.setattr(budget_module, "other_load", lambda: 1.5)
    clock = FakeClock()
    controller = BudgetController(240, BudgetParams(), clock)
    controller._end_cost = EndPredictionCost(0, 0, 0.0)
    trainer = FakeTrainer(controller.prepare_params(TrainerParams(), "cpu", 7))  # threads not set: probed
    simulate(controller, trainer, clock, lambda t, now: 47.0)
    probe = controller.measurements["probe"]
    assert probe["spent_s"] <= 0.05 * 240 and probe["stopped_by_deadline"]
    assert controller.decisions["threads"]["value"] == 1  # the likely winner on a busy machine ran first
    assert clock.t <= 240


def test_a_gpu_stand_in_gets_amp_no_probe_and_long_epochs():
    """4 hours on a (fake) CUDA device at 0.25 s per step: ~57k steps in epochs of 250, nnU-Net's augmentation."""
    plan = Plan(Option("3d_fullres", (128, 128, 128), 7), 57600 * 4 // 5, 0.25, ["kept"], [])
    controller, trainer, clock = make_run(4 * 3600, device="cuda", plan=plan)
    assert trainer.params.iterations_per_epoch == 250 and trainer.params.batch_size == 7
    assert trainer.params.augmentation.enabled and controller.decisions["augmentation"] == "default"
    assert "num_workers" not in controller.decisions  # loader workers as usual on a GPU
    lrs = simulate(controller, trainer, clock, lambda t, now: 0.25)
    assert controller.measurements["probe"]["steps"] == 0  # nothing timed: the AMP path as nnU-Net
    assert controller.decisions["precision"]["value"] == "fp16" and "CUDA" in controller.decisions["precision"]["why"]
    assert controller.decisions["threads"]["value"] is None
    annealed(controller, trainer, lrs)
    assert 40000 < trainer.state.iteration < 57600 and 150 < trainer.state.epoch < 240


def test_gpu_without_a_plan_keeps_the_planned_batch():
    controller, trainer, _ = make_run(600, device="cuda")
    assert trainer.params.batch_size == 7 and controller.decisions["batch_size"]["why"] == "the GPU's planned batch"


def test_cuda_keeps_the_planned_batch_with_params_built_as_the_cli_builds_them():
    """Defaults plus ``--set`` items (training/api.py): a default ``budget.batch_size`` must stay *unset*, or
    a GPU run trains batch 2 instead of its planned 7 (seen on an H200 before overrides kept defaults unset)."""
    params, _ = apply_overrides(TrainerParams, TrainerParams(), ["epochs=3"])
    conf = SimpleNamespace(batch_size=7, dims=3)
    assert "batch_size" not in params.budget.model_fields_set
    assert budget_batch(conf, "cuda", params.budget) == 7 and budget_batch(conf, "cpu", params.budget) == 2
    assert BudgetController(600, params.budget, FakeClock()).prepare_params(params, "cuda", 7).batch_size == 7
    explicit, _ = apply_overrides(TrainerParams, TrainerParams(), ["budget.batch_size=4"])
    assert budget_batch(conf, "cuda", explicit.budget) == 4


def test_fast_gpu_steps_get_epochs_whose_end_costs_little():
    """0.02 s steps for 2.5 minutes: 50-step epochs would last 1 s, each followed by ~0.6 s of pseudo-Dice
    batches, checkpoints and plot (26 % of the budget on an H200); the epochs are made 1000 steps long."""
    plan = Plan(Option("3d_fullres", (40, 56, 40), 7), 6000, 0.02, ["kept"], [])
    controller, trainer, clock = make_run(150, device="cuda", plan=plan)
    assert trainer.params.iterations_per_epoch == 1000
    assert "shorter epochs would spend over 5 %" in controller.decisions["schedule_shape"][0]
    lrs = simulate(controller, trainer, clock, lambda t, now: 0.02)
    annealed(controller, trainer, lrs)
    assert trainer.state.epoch <= 7 and trainer.state.iteration > 0.75 * 150 / 0.02
    unmeasured = Plan(Option("3d_fullres", (40, 56, 40), 7), 6000, None, ["kept"], [])  # 50-step epochs
    controller, short_epochs, clock = make_run(150, device="cuda", plan=unmeasured)
    simulate(controller, short_epochs, clock, lambda t, now: 0.02)
    assert short_epochs.params.iterations_per_epoch == 50 and trainer.state.iteration > 2 * short_epochs.state.iteration


def test_the_summary_names_batch_augmentation_and_the_configuration_switch():
    plan = Plan(Option("2d", (56, 40), 16), 1600, 0.3, ["2d (...) instead of 3d_fullres (...) because x", "y"], [])
    controller, trainer, _ = make_run(600, plan=plan)
    assert controller.summary == [
        "batch 7 -> 16",
        "augmentation light",
        "2d (...) instead of 3d_fullres (...) because x",
    ]
    assert controller.report()["decisions"]["plan"]["option"]["configuration"] == "2d"
