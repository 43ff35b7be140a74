"""What a ``--time-budget`` run trains, decided from measured speed: pure functions, no torch.

A budget decides more than the schedule length. A short budget on a slow CPU gives the 3D
network too few optimizer steps to converge (fold 0 of the hippocampus data on an AVX2-only
CPU, 5 minutes: 79 iterations and Dice 0.00 for one label), while the same budget trains the
2D network for a thousand steps. So the budget plans the run from speed measured on this
machine: every function here takes the measurements (a :class:`SpeedModel`) and returns a
decision with human-readable reasons, which is what makes the rules unit-testable with a fake
speed model and what ``manifest.json`` and the training header show.

The rules (docs/time-budget.md has them for users):

1. **Enough steps.** An option (configuration, patch, batch, network width) is good enough when
   the training time the budget leaves (``train_share`` of it, the rest being validation, the
   final save and the predictions after training) buys ``min_iterations`` optimizer steps at
   its speed (``min_iterations_2d`` for a 2D option). The first good-enough option of the
   ladder wins; when none is, the one with the most steps (the cheapest) does, and the reasons
   say that the budget is short. 2D needs more steps because a 2D sample is one slice: on the
   hippocampus data on an AVX-512 CPU without bf16, 3d_fullres reached Dice 0.845/0.840 after
   174 steps, while 2d at the budget's batch of 16 gave 0.76/0.81 after 498 steps (full width)
   and 0.845/0.830 after 2521 (half width, the same 5 minutes).
2. **The ladder**, best model first: each configuration as planned and then at half the
   network width (only for networks whose params have ``features_per_stage``), ``3d_fullres``
   before ``2d`` (only when the user did not pass ``--config`` and both are preprocessed), then
   at half width with a smaller patch (kept acceptable to the network). A narrower 3D network
   comes before the 2D one: on the hippocampus data 2d plateaued at Dice ~0.85/0.83 (1741
   full-width steps in 10 minutes) while 3d_fullres reaches 0.86/0.85 after ~300 steps.
3. **Speed of an option not measured**: the measured speed of its configuration scaled by the
   work per step (batch x patch voxels, width to the power :data:`WIDTH_COST_EXPONENT`). The
   real speed re-sizes the schedule once training runs, so an estimate only picks the option.
4. **Schedule shape** from the expected steps: epochs of 50 iterations for short runs, up to
   nnU-Net's 250 for long ones (GPU, hours), so a run has about 100 epochs at most of
   validation and checkpoints; augmentation ``off`` under 1000 steps (a short run underfits),
   ``light`` under 5000, nnU-Net's full augmentation beyond.
5. **Precision**: CUDA uses nnU-Net's fp16 AMP (no probe); a CPU times bf16 only where it runs
   bf16 natively (AVX512-BF16 or AMX) and ``SEGFORGE_DISABLE_BF16`` is not set.
6. **Threads**: one per core on a quiet machine; on a loaded one, half the cores first, then all.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

#: work of a convolution grows with in x out channels, but CPU steps of small nets are partly
#: memory- and overhead-bound: halving the width was assumed to save 2^1.5, not 4x
WIDTH_COST_EXPONENT = 1.5
#: the configurations a budget may choose between, the better model (when it gets its steps) first
CONFIGURATION_PREFERENCE = ("3d_fullres", "2d")
#: expected optimizer steps below which augmentation is switched off / halved
AUGMENTATION_OFF_BELOW = 1000
AUGMENTATION_LIGHT_BELOW = 5000
#: iterations per epoch: at least this (short runs) and at most nnU-Net's 250 (long runs)
SHORT_EPOCH = 50
LONG_EPOCH = 250
TARGET_EPOCHS = 100
#: seconds per epoch assumed for its end (pseudo-Dice batches, checkpoints, plot) before one is measured
EPOCH_OVERHEAD_GUESS_S = 1.0
#: fast steps (a GPU, a 2D net) get epochs long enough that their end costs at most this share of the time
EPOCH_OVERHEAD_SHARE = 0.05
#: ... but never over this many iterations, nor fewer than this many epochs in the run
MAX_EPOCH = 1000
MIN_EPOCHS = 5
#: cores kept busy by other processes (load average or a /proc/stat sample) from which threads are timed
BUSY_CORES = 0.5


@dataclass(frozen=True)
class Option:
    """One way to train: a configuration at a patch, batch and network width (1.0 = as planned)."""

    configuration: str
    patch: tuple[int, ...]
    batch: int
    width: float = 1.0
    planned_patch: tuple[int, ...] | None = None

    @property
    def work(self) -> float:
        """Relative work per optimizer step (see rule 3)."""
        return self.batch * math.prod(self.patch) * self.width**WIDTH_COST_EXPONENT

    def describe(self) -> str:
        patch = "x".join(str(p) for p in self.patch)
        width = "" if self.width == 1.0 else f", width x{self.width:g}"
        return f"{self.configuration} (patch {patch}, batch {self.batch}{width})"

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["patch"], out["planned_patch"] = list(self.patch), list(self.planned_patch or self.patch)
        return out


class SpeedModel(Protocol):
    """Seconds per optimizer step of an option, ``None`` when nothing is known about it."""

    def seconds_per_step(self, option: Option) -> float | None: ...


@dataclass
class ScaledSpeeds:
    """Speeds measured for some options; others of the same configuration scaled by their work (rule 3)."""

    measured: dict[str, tuple[Option, float]] = field(default_factory=dict)

    def add(self, option: Option, seconds: float) -> None:
        self.measured[option.configuration] = (option, float(seconds))

    def seconds_per_step(self, option: Option) -> float | None:
        known = self.measured.get(option.configuration)
        if known is None:
            return None
        reference, seconds = known
        return seconds * option.work / reference.work


@dataclass(frozen=True)
class PlanInputs:
    """What the choice depends on besides the speeds."""

    budget_s: float
    min_iterations: int = 250
    train_share: float = 0.8  # of the budget left for optimizer steps (rule 1)
    spent_s: float = 0.0  # already used (start-up, probe) when the choice is made
    min_iterations_2d: int | None = None  # None: the same as min_iterations

    def required_steps(self, option: Option) -> int:
        """Rule 1's threshold for ``option``: 2D options have their own."""
        if len(option.patch) == 2 and self.min_iterations_2d is not None:
            return self.min_iterations_2d
        return self.min_iterations


@dataclass
class Plan:
    """The chosen option, the steps it is expected to get, and why (one sentence per rule applied)."""

    option: Option
    expected_iterations: int
    s_per_step: float | None
    reasons: list[str]
    considered: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "option": self.option.as_dict(),
            "expected_iterations": self.expected_iterations,
            "s_per_step": None if self.s_per_step is None else round(self.s_per_step, 4),
            "reasons": list(self.reasons),
            "considered": self.considered,
        }


def train_seconds(inputs: PlanInputs) -> float:
    return max(0.0, inputs.budget_s * inputs.train_share - inputs.spent_s)


def option_ladder(
    planned: Sequence[Option],
    half_width_allowed: Callable[[Option], bool] = lambda _o: False,
    smaller_patch: Callable[[Option], tuple[int, ...] | None] = lambda _o: None,
) -> list[Option]:
    """Rule 2: the options in the order they are tried (``planned`` already in preference order)."""
    ladder: list[Option] = []
    narrow = []
    for option in planned:  # a configuration at half width before the next configuration
        ladder.append(option)
        if half_width_allowed(option):
            narrow.append(replace(option, width=0.5))
            ladder.append(narrow[-1])
    for option in narrow:
        patch = smaller_patch(option)
        if patch is not None and tuple(patch) != tuple(option.patch):
            ladder.append(replace(option, patch=tuple(patch), planned_patch=option.planned_patch or option.patch))
    return ladder


def choose_option(inputs: PlanInputs, ladder: Sequence[Option], speeds: SpeedModel) -> Plan:
    """Rule 1 over the ladder; options of unknown speed are skipped (the first is kept if none is known)."""
    seconds = train_seconds(inputs)
    considered, best = [], None
    reasons: list[str] = []
    for option in ladder:
        s = speeds.seconds_per_step(option)
        if s is None or s <= 0:
            considered.append({"option": option.describe(), "s_per_step": None, "expected_iterations": None})
            continue
        steps, needed = int(seconds / s), inputs.required_steps(option)
        considered.append({"option": option.describe(), "s_per_step": round(s, 4), "expected_iterations": steps,
                           "needed_iterations": needed})  # fmt: skip
        if steps >= needed:
            if option != ladder[0]:
                reasons.append(f"{option.describe()} instead of {ladder[0].describe()} because {_short(considered)}")
            reasons.append(f"{option.describe()}: {s:.3f} s/step -> about {steps} steps in {seconds:.0f} s")
            return Plan(option, steps, s, reasons, considered)
        if best is None or steps > best[1]:
            best = (option, steps, s)
    if best is None:  # nothing measured: keep the planned option, the running speed sizes the schedule
        reasons.append(f"{ladder[0].describe()}: no speed measured, kept as planned")
        return Plan(ladder[0], 0, None, reasons, considered)
    option, steps, s = best
    if option != ladder[0]:
        reasons.append(f"{option.describe()} instead of {ladder[0].describe()} because it gets the most steps")
    reasons.append(
        f"budget short: no option reaches {_needed(inputs)} steps; {option.describe()} gets the most "
        f"({steps} at {s:.3f} s/step)"
    )
    return Plan(option, steps, s, reasons, considered)


def _needed(inputs: PlanInputs) -> str:
    if inputs.min_iterations_2d is None or inputs.min_iterations_2d == inputs.min_iterations:
        return str(inputs.min_iterations)
    return f"{inputs.min_iterations} (3D) / {inputs.min_iterations_2d} (2D)"


def _short(considered: list[dict[str, Any]]) -> str:
    """'3d_fullres (...) would get only 120 steps (< 250)' for the options rejected before the choice."""
    parts = [
        f"{c['option']} would get only {c['expected_iterations']} steps (< {c['needed_iterations']})"
        for c in considered[:-1]
        if c["expected_iterations"] is not None
    ]
    return "; ".join(parts) or "the options before it have no measured speed"


# -- schedule shape (rule 4) ---------------------------------------------------------------------
@dataclass(frozen=True)
class ScheduleShape:
    iterations_per_epoch: int
    augmentation: str
    reasons: tuple[str, ...]


def schedule_shape(
    expected_iterations: int, augmentation: str = "auto", s_per_step: float | None = None
) -> ScheduleShape:
    """Epoch length and augmentation for a run expected to make ``expected_iterations`` steps.

    ``s_per_step`` (the plan's measured speed): where steps are fast, 50-250 iterations take a second
    or two and the epoch's end (about :data:`EPOCH_OVERHEAD_GUESS_S`) would eat a quarter of the budget
    (seen on a GPU: 0.02 s steps, 26 % of 2.5 minutes spent saving), so epochs are made longer.
    """
    per_epoch = min(LONG_EPOCH, max(SHORT_EPOCH, expected_iterations // TARGET_EPOCHS))
    per_epoch = SHORT_EPOCH * max(1, round(per_epoch / SHORT_EPOCH)) if per_epoch < LONG_EPOCH else LONG_EPOCH
    why = ""
    if s_per_step:
        needed = EPOCH_OVERHEAD_GUESS_S / (EPOCH_OVERHEAD_SHARE * s_per_step)
        longest = min(MAX_EPOCH, max(SHORT_EPOCH, expected_iterations // MIN_EPOCHS))
        longer = min(SHORT_EPOCH * math.ceil(needed / SHORT_EPOCH), SHORT_EPOCH * (longest // SHORT_EPOCH))
        if longer > per_epoch:
            per_epoch = longer
            share = f"{EPOCH_OVERHEAD_SHARE * 100:.0f} %"
            why = f": at {s_per_step:.3f} s/step shorter epochs would spend over {share} of the time on their end"
    reasons = [f"epochs of {per_epoch} iterations (about {max(1, expected_iterations // per_epoch)} epochs){why}"]
    if augmentation != "auto":
        reasons.append(f"augmentation {augmentation} (set by budget.augmentation)")
        return ScheduleShape(per_epoch, augmentation, tuple(reasons))
    if expected_iterations < AUGMENTATION_OFF_BELOW:
        aug, why = "off", f"fewer than {AUGMENTATION_OFF_BELOW} steps: a short run underfits, clean data teaches faster"
    elif expected_iterations < AUGMENTATION_LIGHT_BELOW:
        aug, why = "light", f"{AUGMENTATION_OFF_BELOW}-{AUGMENTATION_LIGHT_BELOW} steps: half the augmentation"
    else:
        aug, why = "default", f"{AUGMENTATION_LIGHT_BELOW}+ steps: nnU-Net's augmentation against overfitting"
    reasons.append(f"augmentation {aug}: {why}")
    return ScheduleShape(per_epoch, aug, tuple(reasons))


_AUGMENTATION_PROBABILITIES = (
    "p_rot", "p_scale", "p_noise", "p_blur", "p_brightness", "p_contrast", "p_lowres", "p_gamma_inverted", "p_gamma",
)  # fmt: skip


def budget_augmentation(aug: Any, choice: str) -> Any:
    """nnU-Net's augmentation as a budget wants it.

    ``light`` halves every probability; ``mirror`` keeps only mirroring (cheap, and keeps the
    mirroring test-time augmentation consistent with training); ``off`` disables everything.
    A short run underfits: the clean data teaches faster than augmented data.
    """
    if choice == "light":
        return aug.model_copy(update={f: getattr(aug, f) / 2 for f in _AUGMENTATION_PROBABILITIES})
    if choice == "mirror":
        return aug.model_copy(update=dict.fromkeys(_AUGMENTATION_PROBABILITIES, 0.0))
    if choice == "off":
        return aug.model_copy(update={"enabled": False})
    return aug


# -- precision and threads (rules 5, 6) -------------------------------------------------------------
@dataclass(frozen=True)
class PrecisionPlan:
    candidates: tuple[str, ...]  # timed in this order; one entry = no probe
    why: str


def precision_plan(device_type: str, native_bf16: bool, bf16_disabled: str | None, fp32_flag: bool, setting: str):
    """Which precisions a run may use; more than one means the probe times them on real steps."""
    if fp32_flag:
        return PrecisionPlan(("fp32",), "--fp32")
    if device_type == "cuda":
        if setting in ("fp32", "bf16"):
            return PrecisionPlan((setting,), f"set by budget.precision={setting}")
        return PrecisionPlan(("fp16",), "CUDA: fp16 autocast with a GradScaler (nnU-Net's AMP), no probe")
    if setting != "auto":
        return PrecisionPlan((setting,), f"set by budget.precision={setting}")
    if bf16_disabled:
        return PrecisionPlan(("fp32",), f"bf16 disabled by {bf16_disabled}: fp32 as on a CPU without native bf16")
    if not native_bf16:
        return PrecisionPlan(("fp32",), "the CPU has no native bf16 (AVX512-BF16/AMX): fp32")
    return PrecisionPlan(("bf16", "fp32"), "native bf16: bf16 autocast timed against fp32 on the first steps")


def thread_candidates(device_type: str, cores: int, load: float, explicit: int | None) -> tuple[tuple[int, ...], str]:
    """Torch threads to time (the first is the default); the reason for the list."""
    if device_type != "cpu":
        return (), "not a CPU run: torch threads only feed the GPU, no probe"
    if explicit:
        return (explicit,), "set explicitly"
    fewer = max(1, cores // 2)
    if load < BUSY_CORES or fewer == cores:
        return (cores,), f"one per core (other processes keep {load:.1f} cores busy)"
    # fewer first: it is the likely winner (spinning OpenMP threads wait for descheduled siblings)
    return (fewer, cores), f"other processes keep {load:.1f} cores busy: {fewer} and {cores} threads timed"
