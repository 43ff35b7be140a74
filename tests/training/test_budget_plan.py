"""The budget's decisions as pure functions of a (fake) speed model: no timing, no training."""

from __future__ import annotations

import pytest

from segforge.training.budget_plan import (
    Option,
    PlanInputs,
    ScaledSpeeds,
    choose_option,
    option_ladder,
    precision_plan,
    schedule_shape,
    thread_candidates,
)
from segforge.training.budget_probe import StepProbe
from segforge.training.device import bf16_disabled

HIPPO_3D = Option("3d_fullres", (40, 56, 40), 2)
HIPPO_2D = Option("2d", (56, 40), 16)


class FakeSpeeds:
    """Seconds per step by configuration, scaled like the real model for narrower / smaller options."""

    def __init__(self, **by_configuration: float) -> None:
        self.scaled = ScaledSpeeds()
        for option in (HIPPO_3D, HIPPO_2D):
            if option.configuration in by_configuration:
                self.scaled.add(option, by_configuration[option.configuration])

    def seconds_per_step(self, option: Option) -> float | None:
        return self.scaled.seconds_per_step(option)


def test_3d_is_kept_when_it_gets_enough_steps():
    plan = choose_option(PlanInputs(600, min_iterations=250), [HIPPO_3D, HIPPO_2D], FakeSpeeds(**{"3d_fullres": 1.5}))
    assert plan.option == HIPPO_3D
    assert plan.expected_iterations == int(600 * 0.8 / 1.5) == 320
    assert not any("instead of" in r for r in plan.reasons)


def test_2d_is_chosen_when_3d_would_get_too_few_steps():
    """The AVX2-only field report: 2.7 s per 3D step leaves ~180 steps in 10 minutes."""
    speeds = FakeSpeeds(**{"3d_fullres": 2.7, "2d": 0.3})
    plan = choose_option(PlanInputs(600, min_iterations=250), [HIPPO_3D, HIPPO_2D], speeds)
    assert plan.option == HIPPO_2D and plan.expected_iterations == 1600
    why = plan.reasons[0]
    assert why.startswith("2d (patch 56x40, batch 16) instead of 3d_fullres (patch 40x56x40, batch 2) because")
    assert "would get only 177 steps" in why
    assert [c["expected_iterations"] for c in plan.considered] == [177, 1600]


def test_2d_needs_its_own_step_count_so_a_short_budget_takes_the_narrow_2d_network():
    """The 5-minute fp32 run (speeds as its probe measured them): full-width 2d would get ~550 steps.

    That is enough for 3D's 250, not for 2D's 1000. Measured on the hippocampus data: 498
    full-width 2d steps gave Dice 0.76/0.81, 2521 half-width ones 0.845/0.830 in the same 5 minutes.
    """
    ladder = option_ladder([HIPPO_3D, HIPPO_2D], lambda o: True)
    speeds = FakeSpeeds(**{"3d_fullres": 3.11, "2d": 0.41})
    plan = choose_option(PlanInputs(300, min_iterations=250, spent_s=15, min_iterations_2d=1000), ladder, speeds)
    assert (plan.option.configuration, plan.option.width) == ("2d", 0.5)
    assert plan.expected_iterations == 1552
    assert "2d (patch 56x40, batch 16) would get only 548 steps (< 1000)" in plan.reasons[0]
    assert "3d_fullres (patch 40x56x40, batch 2, width x0.5) would get only 204 steps (< 250)" in plan.reasons[0]
    # without a 2D count of its own the full-width 2d network would have been taken
    assert choose_option(PlanInputs(300, min_iterations=250, spent_s=15), ladder, speeds).option == HIPPO_2D
    # 10 minutes: the half-width 3D network gets its 250 steps, tried before full-width 2d (1134 steps)
    assert [(o.configuration, o.width) for o in ladder] == [("3d_fullres", 1.0), ("3d_fullres", 0.5), ("2d", 1.0),
                                                            ("2d", 0.5)]  # fmt: skip
    plan = choose_option(PlanInputs(600, min_iterations=250, spent_s=15, min_iterations_2d=1000), ladder, speeds)
    assert (plan.option.configuration, plan.option.width) == ("3d_fullres", 0.5) and plan.expected_iterations == 422


def test_a_fixed_configuration_goes_narrower_then_smaller():
    """--config 3d_fullres on a slow machine: half width first, then a smaller patch as well."""
    ladder = option_ladder([HIPPO_3D], lambda o: True, lambda o: (32, 48, 32))
    assert [(o.width, o.patch) for o in ladder] == [(1.0, (40, 56, 40)), (0.5, (40, 56, 40)), (0.5, (32, 48, 32))]
    speeds = FakeSpeeds(**{"3d_fullres": 2.7})
    # half width: 2.7 / 2^1.5 = 0.95 s -> 503 steps in 8 minutes of training
    plan = choose_option(PlanInputs(600, min_iterations=250), ladder, speeds)
    assert plan.option.width == 0.5 and plan.option.patch == (40, 56, 40)
    assert plan.expected_iterations == 502
    # a 3-minute budget: even half width is short -> the smaller patch too
    plan = choose_option(PlanInputs(180, min_iterations=250), ladder, speeds)
    assert plan.option.patch == (32, 48, 32) and plan.option.planned_patch == (40, 56, 40)


def test_a_budget_no_option_fits_takes_the_cheapest_and_says_so():
    ladder = option_ladder([HIPPO_3D, HIPPO_2D])
    plan = choose_option(PlanInputs(60, min_iterations=250), ladder, FakeSpeeds(**{"3d_fullres": 6.7, "2d": 0.5}))
    assert plan.option == HIPPO_2D
    assert (
        plan.reasons[0]
        == "2d (patch 56x40, batch 16) instead of 3d_fullres (patch 40x56x40, batch 2) because it gets the most steps"
    )
    assert plan.reasons[-1].startswith("budget short: no option reaches 250 steps; 2d")


def test_nothing_measured_keeps_the_planned_option():
    plan = choose_option(PlanInputs(600), [HIPPO_3D, HIPPO_2D], FakeSpeeds())
    assert plan.option == HIPPO_3D and plan.expected_iterations == 0 and "no speed measured" in plan.reasons[0]


def test_time_already_spent_counts_against_the_steps():
    speeds = FakeSpeeds(**{"3d_fullres": 1.0})
    assert choose_option(PlanInputs(600, spent_s=100), [HIPPO_3D], speeds).expected_iterations == 380


@pytest.mark.parametrize(
    ("expected", "per_epoch", "augmentation"),
    [(0, 50, "off"), (300, 50, "off"), (2500, 50, "light"), (20000, 200, "default"), (57600, 250, "default")],
)
def test_schedule_shape_follows_the_expected_steps(expected, per_epoch, augmentation):
    """Minutes on a CPU: short epochs, no augmentation; 4 h on a GPU (~58k steps): nnU-Net's epochs and augmentation."""
    shape = schedule_shape(expected)
    assert (shape.iterations_per_epoch, shape.augmentation) == (per_epoch, augmentation)
    assert shape.reasons[-1].startswith(f"augmentation {augmentation}")


@pytest.mark.parametrize(
    ("expected", "s_per_step", "per_epoch"),
    [
        (600, 1.4, 50),  # CPU 3D steps: the end of a 50-step epoch is about 1 % of it
        (800, 0.1, 150),  # CPU 2D, 2 minutes: as long as 5 epochs allow (not the 200 the 5 % rule asks)
        (6000, 0.02, 1000),  # a GPU, minutes: 1000 steps of 0.02 s per epoch
        (600000, 0.02, 1000),  # a GPU, 4 h: capped at 1000 (nnU-Net's 250 would end every 5 s)
        (57600, 0.25, 250),  # a slower GPU: nnU-Net's epochs already cost little
    ],
)
def test_fast_steps_get_longer_epochs(expected, s_per_step, per_epoch):
    shape = schedule_shape(expected, s_per_step=s_per_step)
    assert shape.iterations_per_epoch == per_epoch
    assert ("shorter epochs would spend" in shape.reasons[0]) == (
        per_epoch > schedule_shape(expected).iterations_per_epoch
    )


def test_an_explicit_augmentation_wins():
    assert schedule_shape(50000, "off").augmentation == "off"


def test_precision_rules():
    assert precision_plan("cuda", False, None, False, "auto").candidates == ("fp16",)
    assert precision_plan("cpu", False, None, False, "auto").candidates == ("fp32",)
    assert precision_plan("cpu", True, None, False, "auto").candidates == ("bf16", "fp32")
    disabled = precision_plan("cpu", True, "SEGFORGE_DISABLE_BF16=1", False, "auto")
    assert disabled.candidates == ("fp32",) and "SEGFORGE_DISABLE_BF16=1" in disabled.why
    assert precision_plan("cpu", True, None, True, "auto").candidates == ("fp32",)
    assert precision_plan("cpu", False, None, False, "bf16").candidates == ("bf16",)


def test_the_environment_variable_disables_bf16(monkeypatch):
    monkeypatch.delenv("SEGFORGE_DISABLE_BF16", raising=False)
    assert bf16_disabled() is None
    monkeypatch.setenv("SEGFORGE_DISABLE_BF16", "1")
    assert bf16_disabled() == "SEGFORGE_DISABLE_BF16=1"
    monkeypatch.setenv("SEGFORGE_DISABLE_BF16", "0")
    assert bf16_disabled() is None


def test_thread_rules():
    assert thread_candidates("cpu", 2, 0.2, None)[0] == (2,)
    assert thread_candidates("cpu", 2, 1.5, None)[0] == (1, 2)  # busy: the likely winner first
    assert thread_candidates("cpu", 2, 0.9, None)[0] == (1, 2)  # a hog that just started: /proc/stat sees ~1 core
    assert thread_candidates("cpu", 2, 1.5, 2)[0] == (2,)
    assert thread_candidates("cuda", 16, 3.0, None)[0] == ()


# -- the probe on (fake) training steps ----------------------------------------------------------
def run_probe(probe: StepProbe, seconds_of, first_step_s: float = 5.0) -> list[tuple[str, int | None]]:
    """Feed ``probe`` one step at a time; the settings each step ran at."""
    ran = []
    while not probe.done:
        setting = probe.current()
        ran.append(setting)
        probe.record(first_step_s if len(ran) == 1 else seconds_of(setting))
    return ran


def test_probe_picks_bf16_on_a_quiet_bf16_machine():
    probe = StepProbe(("bf16", "fp32"), (2,), limit_s=30)
    ran = run_probe(probe, {("bf16", 2): 0.7, ("fp32", 2): 1.4}.get)
    assert ran == [("bf16", 2), ("bf16", 2), ("fp32", 2), ("fp32", 2)]  # every one an optimizer step
    assert probe.choice() == ("bf16", 2) and probe.seconds_per_step() == 0.7
    assert probe.spent_s == pytest.approx(0.7 + 1.4 + 1.4) and not probe.stopped_by_deadline


def test_probe_keeps_fp32_when_bf16_is_not_clearly_faster():
    probe = StepProbe(("bf16", "fp32"), (2,), limit_s=30, min_bf16_speedup=1.2)
    run_probe(probe, {("bf16", 2): 1.0, ("fp32", 2): 1.1}.get)
    assert probe.choice() == ("fp32", 2)


def test_probe_times_threads_at_the_winning_precision_on_a_busy_machine():
    probe = StepProbe(("fp32",), (1, 2), limit_s=60)
    ran = run_probe(probe, {("fp32", 1): 6.0, ("fp32", 2): 8.35}.get)
    assert ran[-1] == ("fp32", 2) and probe.choice() == ("fp32", 1)


def test_probe_stops_at_its_share_on_a_loaded_machine():
    """The field report: 47 s per 2-thread step, a 4-minute budget. 5 % = 12 s: nothing more is timed."""
    probe = StepProbe(("fp32",), (1, 2), limit_s=0.05 * 240)
    ran = run_probe(probe, lambda s: 47.0, first_step_s=47.0)
    assert ran == [("fp32", 1)] and probe.stopped_by_deadline and probe.spent_s == 0
    assert probe.choice() == ("fp32", 1) and probe.report()["skipped"] == ["fp32 1 threads", "fp32 2 threads"]


@pytest.mark.parametrize("budget_s", [60, 120, 240, 600, 3600])
@pytest.mark.parametrize("base_s", [0.05, 0.7, 2.7, 6.0, 20.0, 47.0])
def test_probe_cost_stays_within_five_percent(budget_s, base_s):
    """Whatever the speed, the seconds of probing (steps after the first) never pass 5 % of the budget,
    as long as settings differ by at most 2x (the estimate's allowance for a setting not yet run)."""
    speeds = {("bf16", 1): base_s, ("fp32", 1): 2 * base_s, ("bf16", 2): 1.9 * base_s, ("fp32", 2): 2 * base_s}
    probe = StepProbe(("bf16", "fp32"), (1, 2), limit_s=0.05 * budget_s)
    run_probe(probe, speeds.get, first_step_s=3 * base_s)
    assert probe.spent_s <= 0.05 * budget_s + 1e-9


def test_a_smaller_patch_stays_acceptable_to_the_network():
    """budget_setup shrinks each edge to 80 % and rounds down to what the U-Net's strides accept."""
    from types import SimpleNamespace

    from segforge.plugins import get_registries
    from segforge.training.budget_setup import _half_width, _smaller_patch

    builder = get_registries().network.get("generic_unet")
    params = {"features_per_stage": [32, 64, 128], "kernel_sizes": [[3, 3, 3]] * 3,
              "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2]]}  # fmt: skip
    network = SimpleNamespace(params=params)
    context = SimpleNamespace(
        configuration=SimpleNamespace(patch_size=[40, 56, 40], network=network),
        network_entry=SimpleNamespace(component=builder),
    )
    half = _half_width(context)
    assert half["features_per_stage"] == [16, 32, 64]
    assert _smaller_patch(context, half) == (32, 44, 32)  # multiples of the cumulative stride 4


class _SlowNet:
    """Stands in for a network: forward costs ``per_sample_s`` of fake time per sample, backward twice that."""

    def __init__(self, clock: list[float], per_sample_s: float, first_call_s: float = 0.0) -> None:
        import torch

        self.clock, self.per_sample_s, self.first_call_s = clock, per_sample_s, first_call_s
        self.weight = torch.nn.Parameter(torch.ones(1))

    def __call__(self, x):
        import torch

        net = self

        class Timed(torch.autograd.Function):
            @staticmethod
            def forward(ctx, w):
                net.clock[0] += net.per_sample_s * x.shape[0] + net.first_call_s
                net.first_call_s = 0.0
                return w * 1.0

            @staticmethod
            def backward(ctx, grad):
                net.clock[0] += 2 * net.per_sample_s * x.shape[0]
                return grad

        return Timed.apply(self.weight)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.weight.grad = None


@pytest.mark.parametrize(("budget_s", "step_s"), [(240, 47.0), (240, 6.0), (600, 2.7), (120, 0.3), (3600, 1.5)])
def test_the_synthetic_probe_stays_within_its_deadline(budget_s, step_s):
    """A batch-2 training pass of ``step_s`` (fake clock): the probe spends at most 5 % of the budget."""
    import torch

    from segforge.training.budget_probe import Deadline, time_network_step
    from segforge.training.device import PrecisionChoice

    clock = [0.0]
    deadline = Deadline(lambda: clock[0], 0.05 * budget_s)
    net = _SlowNet(clock, step_s / 6)  # forward 1/3 of a pass, batch 2
    seconds = time_network_step(net, 1, (4, 4, 4), 2, torch.device("cpu"), PrecisionChoice("fp32", "cpu"),
                                deadline)  # fmt: skip
    assert clock[0] <= 0.05 * budget_s + 1e-9
    assert seconds == pytest.approx(step_s)  # measured when a pass fits, else the scout's estimate


def test_the_first_calls_start_up_cost_does_not_pass_for_a_slow_network():
    """On a fresh GPU the first forward took 0.58 s (CUDA context, cuDNN autotuning) against 3 ms warm: timed
    once, the scout's estimate (24.5 s for a 0.02 s step) exceeded the 7.5 s probe share and was taken as the speed."""
    import torch

    from segforge.training.budget_probe import Deadline, time_network_step
    from segforge.training.device import PrecisionChoice

    clock = [0.0]
    deadline = Deadline(lambda: clock[0], 7.5)
    net = _SlowNet(clock, 0.001, first_call_s=0.58)  # a batch-7 pass: 7 x (1 + 2) ms
    seconds = time_network_step(net, 1, (4, 4, 4), 7, torch.device("cpu"), PrecisionChoice("fp32", "cpu"), deadline)
    assert seconds == pytest.approx(0.021) and clock[0] <= 7.5


def test_a_network_that_fails_in_the_probe_is_left_unmeasured():
    """A plugin network that raises while being timed: no speed, the trainer reports its own error later."""
    from types import SimpleNamespace

    import torch

    from segforge.training.budget_probe import Deadline
    from segforge.training.budget_setup import _time_option
    from segforge.training.device import PrecisionChoice

    class Broken:
        def parse_params(self, params):
            return params

        def build(self, params, in_channels, num_classes):
            raise RuntimeError("plugin bug")

    ctx = SimpleNamespace(network_entry=SimpleNamespace(component=Broken()), in_channels=1, num_classes=3,
                          configuration=SimpleNamespace(network=SimpleNamespace(params={})))  # fmt: skip
    deadline = Deadline(lambda: 0.0, 10.0)
    device = torch.device("cpu")
    assert _time_option(ctx, HIPPO_3D, device, PrecisionChoice("fp32", "cpu"), deadline) is None
