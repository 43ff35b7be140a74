"""``--time-budget MINUTES``: fit the whole recipe into a wall-clock budget.

Stock nnU-Net stopped after 10 minutes on a 2-core CPU has done ~75 iterations with its LR
still at the start value and predicts nothing. A budgeted run instead:

1. **before building** (:mod:`.budget_setup`, rules in :mod:`.budget_plan`): times the planned
   network(s) on a synthetic batch within the probe deadline and chooses what to train -
   configuration (2d when 3d_fullres would not get ``budget.min_iterations`` steps and
   ``--config`` was not given), network width, patch, batch;
2. **params** (:meth:`BudgetController.prepare_params`): that batch instead of the planned one
   (more optimizer steps per second on CPU), per-iteration poly LR, epochs sized to the expected
   steps (50 iterations for short runs, up to 250 for hours on a GPU) with few validation
   batches, augmentation by the expected steps (``off`` for short runs: measured on the
   hippocampus data, fold 0, batch 2, bf16, equal iterations, after 100 iterations nnU-Net's
   augmentation gave pseudo-Dice 0.00/0.24, none 0.82/0.81), in-process data loading on CPU
   (workers would compete with torch for the cores) and glibc memory reuse;
3. **first steps** (:meth:`after_iteration` + :class:`.budget_probe.StepProbe`): on CPU the
   precision (bf16 only where native) and thread count are timed on real training steps,
   within ``budget.probe_share`` of the budget; then the schedule is sized - total iterations =
   what fits in the time left, after validation batches, checkpoints, the final save and the
   predictions after training (:mod:`.prediction_cost`) - and the poly schedule re-anchored so it
   decays to 0 exactly there. CUDA runs keep nnU-Net's fp16 AMP and probe nothing;
4. **while running**: a speed drop seen within an epoch shrinks the schedule at once (so the
   LR still reaches 0 before the time is up); after each epoch (:meth:`after_epoch`) the
   schedule is re-sized both ways from the speed actually observed, the LR curve continuous;
5. **always**: stop at once when the time left would not cover the final save.

The clock counts wall time from the start of the process (interpreter start-up included) and,
for ``--continue``, the time of earlier sessions (stored in checkpoints): the budget is the
total training time of the run. Every decision and measurement goes into ``manifest.json``.
Budgeted runs are not bit-reproducible: how much is trained depends on the machine's speed.
"""

from __future__ import annotations

import math
import statistics
from typing import TYPE_CHECKING, Any

from segforge.training.budget_plan import (
    EPOCH_OVERHEAD_GUESS_S,
    Plan,
    budget_augmentation,
    precision_plan,
    schedule_shape,
    thread_candidates,
)
from segforge.training.budget_probe import StepProbe
from segforge.training.clock import Clock
from segforge.training.device import available_cores, bf16_disabled, cpu_has_bf16, enable_memory_reuse, other_load
from segforge.training.device import set_threads as torch_threads
from segforge.training.params import BudgetParams, TrainerParams
from segforge.training.prediction_cost import EndPredictionCost

if TYPE_CHECKING:  # pragma: no cover
    from segforge.training.protocols import Trainer

__all__ = ["BudgetController", "budget_augmentation"]  # budget_augmentation: its old home, still imported from here

#: a provisional schedule length until the speed is measured (the LR stays at its start value)
_UNSIZED = 10**9
#: a forward-only validation batch costs about this share of a training iteration (first guess)
_VAL_SHARE_GUESS = 0.4
#: within an epoch, a speed drop is checked every this many iterations over the last this many steps
_DRIFT_WINDOW = 5
#: ... and shrinks the schedule when less than this share of it still fits (10 % jitter is no drop)
_DRIFT_SHRINK = 0.9
#: an epoch this much faster or slower than the one before is a new regime: its speed alone counts
_REGIME_CHANGE = 0.2


class BudgetController:
    """Sizes and polices a budgeted run; its decisions are plain data (checkpoint + manifest)."""

    def __init__(self, budget_s: float, params: BudgetParams, clock: Clock | None = None) -> None:
        self.budget_s = float(budget_s)
        self.params = params
        self.clock = clock or Clock()
        self.decisions: dict[str, Any] = {}
        self.measurements: dict[str, Any] = {}
        self.replans: list[dict[str, Any]] = []
        self.sized = False
        #: what :mod:`.budget_setup` chose before the trainer was built (None: nothing to choose)
        self.plan: Plan | None = None
        #: seconds the pre-build probe already spent of the probe share
        self.probe_spent_s = 0.0
        self.probe: StepProbe | None = None
        self.summary: list[str] = []
        self._times: list[float] = []
        self._last = self._now()
        self._epoch_iteration_times: list[float] = []
        self._val_s_per_batch: float | None = None
        self._epoch_overhead_s = EPOCH_OVERHEAD_GUESS_S
        self._epoch_speeds: list[float] = []
        self._end_cost: EndPredictionCost | None = None

    def _now(self) -> float:
        return self.clock.session()

    # -- 1. params ---------------------------------------------------------------------------
    def prepare_params(self, params: TrainerParams, device_type: str, planned_batch: int) -> TrainerParams:
        """The trainer params for a budgeted run (``--set`` values win only for fields set explicitly here)."""
        b = self.params
        if self.plan is not None:
            batch = self.plan.option.batch
        elif device_type == "cuda" and "batch_size" not in b.model_fields_set:
            batch = planned_batch  # a GPU's planned batch is sized to its memory
        else:
            batch = min(b.batch_size, planned_batch) if b.batch_size else planned_batch
        expected = self.plan.expected_iterations if self.plan is not None else 0
        shape = schedule_shape(expected, b.augmentation, self.plan.s_per_step if self.plan is not None else None)
        per_epoch = b.iterations_per_epoch or shape.iterations_per_epoch
        update: dict[str, Any] = {
            "batch_size": batch,
            "lr_step": "iteration",
            "iterations_per_epoch": per_epoch,
            "val_iterations": b.val_iterations,
            "final_val_iterations": b.final_val_iterations,
            "initial_lr": b.initial_lr or params.initial_lr,
            "warmup_iterations": b.warmup_iterations,
            "checkpoint_every": 1,
            "ema_keep": b.ema_keep,
        }
        update["augmentation"] = budget_augmentation(params.augmentation, shape.augmentation)
        why_batch = "the GPU's planned batch" if batch == planned_batch else "more optimizer steps per second"
        self.decisions.update(
            budget_s=self.budget_s,
            batch_size={"value": batch, "planned": planned_batch, "why": why_batch},
            iterations_per_epoch=per_epoch,
            val_iterations=b.val_iterations,
            lr={"initial": update["initial_lr"], "schedule": "poly 0.9 per iteration, sized to the budget"},
            augmentation=shape.augmentation,
            schedule_shape=list(shape.reasons),
        )
        if self.plan is not None:
            self.decisions["plan"] = self.plan.as_dict()
            self.measurements["planning_probe_s"] = round(self.probe_spent_s, 3)
        self.summary = self._summary(batch, planned_batch, shape.augmentation)
        if device_type == "cpu":
            threads = params.threads or available_cores()
            update["num_workers"] = 0
            torch_threads(threads)
            reuse = enable_memory_reuse() if b.memory_reuse else False
            self.decisions.update(
                threads={"value": threads, "why": "set explicitly" if params.threads else "one per core"},
                num_workers={"value": 0, "why": "workers would compete with torch for the cores"},
                memory_reuse={"value": reuse, "why": "glibc keeps freed blocks: fewer page faults"},
            )
        return params.model_copy(update=update)

    def _summary(self, batch: int, planned_batch: int, augmentation: str) -> list[str]:
        """'batch 7 -> 2', 'augmentation off', '2d instead of 3d_fullres because ...' for the log header."""
        parts = [f"batch {planned_batch} -> {batch}" if batch != planned_batch else f"batch {batch}"]
        parts.append(f"augmentation {augmentation}")
        if self.plan is not None:
            parts += [r for r in self.plan.reasons if " instead of " in r or r.startswith("budget short")]
        return parts

    # -- 2. precision and threads --------------------------------------------------------------
    def before_training(self, trainer: Trainer) -> None:
        """Set up the precision/thread probe (fresh runs) and make the schedule provisional until measured."""
        if self.sized:  # a resumed run keeps the precision and threads it measured
            chosen = self.decisions.get("precision", {}).get("value")
            if chosen and not trainer.context.request.fp32 and trainer.device.type == "cpu":
                trainer.set_precision(chosen)
            self._last = self._now()
            return
        from segforge.training.progress_plot import preload

        preload()  # import matplotlib now: a first import inside an epoch would look like per-epoch cost
        if self.summary:
            trainer.log.line("budget: " + ", ".join(self.summary))
        self.probe = self.make_probe(trainer)
        self._apply(trainer, self.probe.current())
        if self.probe.done:
            self._record_probe(trainer)
        trainer.resize(_UNSIZED)
        self._last = self._now()

    def make_probe(self, trainer: Trainer) -> StepProbe:
        """Candidates from the rules of :mod:`.budget_plan`; one each (no probe) on CUDA or under torchrun."""
        device = trainer.device.type
        request = trainer.context.request
        precisions = precision_plan(device, cpu_has_bf16(), bf16_disabled(), request.fp32, self.params.precision)
        load = other_load() if device == "cpu" else 0.0
        threads, threads_why = thread_candidates(device, available_cores(), load, trainer.params.threads)
        candidates = precisions.candidates
        if device == "cuda" and self.params.precision == "auto" and not request.fp32:
            candidates = (trainer.precision.name,)  # the trainer's AMP choice (its GradScaler exists already)
        if getattr(getattr(trainer, "dist", None), "active", False):  # ranks must not choose differently
            candidates, threads = candidates[:1], threads[:1]
        self.decisions["precision"] = {"value": candidates[0], "why": precisions.why}
        self.decisions["threads"] = {"value": threads[0] if threads else None, "why": threads_why}
        limit = max(0.0, self.params.probe_share * self.budget_s - self.probe_spent_s)
        return StepProbe(candidates, threads, limit, min_bf16_speedup=self.params.min_bf16_speedup)

    def _apply(self, trainer: Trainer, setting: tuple[str, int | None]) -> None:
        precision, threads = setting
        if trainer.device.type == "cpu" or precision != trainer.precision.name:
            trainer.set_precision(precision)
        if threads and trainer.device.type == "cpu":
            trainer.set_threads(threads)

    def _record_probe(self, trainer: Trainer) -> None:
        """The probe's choice into decisions and log (its steps were training steps)."""
        probe = self.probe
        precision, threads = probe.choice()
        report = probe.report()
        self.measurements["probe"] = report
        if report["timed_s_per_step"]:
            shown = ", ".join(f"{k} {v:.3f} s" for k, v in report["timed_s_per_step"].items())
            cut = " (probe share spent: the rest not timed)" if probe.stopped_by_deadline else ""
            self.decisions["precision"] = {"value": precision, "why": f"timed on training steps: {shown}{cut}"}
            if threads is not None:
                self.decisions["threads"] = {"value": threads, "why": f"timed on training steps: {shown}{cut}"}
            trainer.log.line(f"budget: {shown} per step -> {precision}, {threads or 'default'} threads{cut}")
        elif probe.stopped_by_deadline:
            why = "the first steps used the probe's share of the budget: kept the first candidate"
            self.decisions["precision"]["why"] += f"; {why}"
            trainer.log.line(f"budget: {why} ({precision}, {threads or 'default'} threads)")
        self._apply(trainer, (precision, threads))

    # -- 3./5. per iteration -------------------------------------------------------------------
    def after_iteration(self, trainer: Trainer) -> None:
        now = self._now()
        step = now - self._last
        self._last = now
        self._times.append(step)
        probing = self.probe is not None and not self.probe.done
        if not probing and len(self._times) > 1:  # the epoch's speed: set-up and other settings' steps left out
            self._epoch_iteration_times.append(step)
        if probing:
            self.probe.record(step)
            self._apply(trainer, self.probe.current())
            if self.probe.done:
                self._record_probe(trainer)
                self.size(trainer, self.probe.seconds_per_step())
        elif not self.sized and self._ready_to_size():
            self.size(trainer, statistics.median(self._times[1:]))
        elif self.sized:
            self._follow_speed_drop(trainer)
        if self.sized and self.clock.elapsed() + self._final_cost(trainer) > self.budget_s:
            if trainer.total_iterations > trainer.state.iteration:
                trainer.log.warning(
                    f"budget: time is up at iteration {trainer.state.iteration} of {trainer.total_iterations}; "
                    "stopping early"
                )
                self.replans.append({"at_iteration": trainer.state.iteration, "hard_stop": True})
                trainer.resize(trainer.state.iteration, retarget=False)  # the LR of steps never run is moot

    def _ready_to_size(self) -> bool:
        """Enough steps timed: ``measure_iterations``, or fewer when they already used the probe share."""
        n = len(self._times)
        limit = self.params.probe_share * self.budget_s - self.probe_spent_s
        return n >= self.params.measure_iterations or (n >= 2 and sum(self._times[1:]) >= limit)

    def _follow_speed_drop(self, trainer: Trainer) -> None:
        """Within an epoch: when the machine got slower, end the schedule sooner now, so the LR still anneals.

        Only shrinks; a faster machine is followed after the epoch (:meth:`after_epoch`), from a
        whole epoch's speed.
        """
        times = self._epoch_iteration_times
        if len(times) < _DRIFT_WINDOW or len(times) % _DRIFT_WINDOW:
            return
        recent = statistics.median(times[-_DRIFT_WINDOW:])
        total = self.fit_iterations(trainer, recent)
        if total < _DRIFT_SHRINK * trainer.total_iterations and trainer.total_iterations > trainer.state.iteration:
            total = max(total, trainer.state.iteration)
            self.replans.append(
                {
                    "at_iteration": trainer.state.iteration,
                    "old": trainer.total_iterations,
                    "new": total,
                    "why": "slower",
                },
            )
            trainer.log.line(f"budget: {recent:.3f} s/iteration now (slower) -> re-sized to {total} iterations")
            trainer.resize(total)

    def _val_cost(self, s_per_iteration: float) -> float:
        return self._val_s_per_batch if self._val_s_per_batch is not None else _VAL_SHARE_GUESS * s_per_iteration

    def _final_cost(self, trainer: Trainer) -> float:
        """Seconds the end of training needs: final validation batches, what an epoch end costs (final
        checkpoint, plot, manifest), the predictions after training, plus the fixed reserve."""
        s_it = self.measurements.get("s_per_iteration", 0.0)
        final_val = self.params.final_val_iterations * self._val_cost(s_it)
        return self.params.reserve_s + final_val + self._epoch_overhead_s + self.end_predictions_s(trainer)

    def end_predictions_s(self, trainer: Trainer) -> float:
        """Estimated seconds of end-of-training validation and next-stage predictions (prediction_cost.py).

        A forward pass of one patch is priced by timing the network as prediction runs it, once
        (:func:`.prediction_cost.time_patch_forward`, charged to the probe in ``time_spent``).
        """
        import contextlib

        from segforge.training.prediction_cost import end_prediction_cost, time_patch_forward

        if self._end_cost is None:
            self._end_cost = end_prediction_cost(trainer)
            self.decisions["end_predictions"] = {
                **self._end_cost.as_dict(),
                "why": "validation / next-stage predictions after training are counted in the budget",
            }
        s_per_patch = getattr(self, "_end_s_per_patch", None)
        if s_per_patch is None and self._end_cost.forward_passes:
            account = getattr(trainer, "time_account", None)
            started = self._now()
            with account.measure("probe") if account is not None else contextlib.nullcontext():
                s_per_patch = self._end_s_per_patch = time_patch_forward(trainer)
            self._last += self._now() - started  # not part of the training step being timed
            self.measurements["end_predictions_s_per_patch"] = round(s_per_patch, 5)
        seconds = self._end_cost.seconds(s_per_patch or 0.0)
        self.measurements["end_predictions_estimated_s"] = round(seconds, 2)
        return seconds

    def record_end_predictions(self, seconds: float) -> None:
        """What the predictions after training really took (shown beside the estimate in the manifest)."""
        self.measurements["end_predictions_s"] = round(seconds, 2)

    def fit_iterations(self, trainer: Trainer, s_per_iteration: float) -> int:
        """Total iterations (from the run's start) that fit in the time left at the current speed."""
        p = trainer.params
        left = self.budget_s * (1 - self.params.safety_fraction) - self.clock.elapsed() - self._final_cost(trainer)
        per_epoch_fixed = p.val_iterations * self._val_cost(s_per_iteration) + self._epoch_overhead_s
        epochs_left = max(left, 0.0) / (p.iterations_per_epoch * s_per_iteration + per_epoch_fixed)
        train_time = left - math.ceil(epochs_left) * per_epoch_fixed
        return trainer.state.iteration + max(0, int(train_time / s_per_iteration))

    def size(self, trainer: Trainer, s_it: float) -> None:
        """Fix the schedule from the measured seconds per iteration (probe steps included: nothing wasted)."""
        self.measurements["s_per_iteration"] = round(s_it, 4)
        self.measurements["measured_after_s"] = round(self.clock.elapsed(), 2)
        total = self.fit_iterations(trainer, s_it)
        trainer.resize(total)
        self.sized = True
        epochs = math.ceil(total / trainer.params.iterations_per_epoch)
        self.decisions["schedule"] = {"total_iterations": total, "epochs": epochs}
        trainer.log.line(
            f"budget: {s_it:.3f} s/iteration measured -> {total} iterations in {epochs} epochs of "
            f"{trainer.params.iterations_per_epoch}, poly LR decaying to 0 at iteration {total}"
        )
        trainer.write_manifest("running")

    # -- 4. per epoch --------------------------------------------------------------------------
    def after_epoch(self, trainer: Trainer) -> None:
        """Re-size from this epoch's observed speed and validation/checkpoint cost."""
        now = self._now()
        times, self._epoch_iteration_times = self._epoch_iteration_times, []
        if not self.sized or not times or trainer.done():
            self._last = now
            return
        # the last two epochs: recent enough to follow the machine, smooth enough not to chase one slow epoch;
        # an epoch more than _REGIME_CHANGE off the one before starts afresh (another process started or stopped)
        speed = sum(times) / len(times)
        previous = self._epoch_speeds[-1:]
        if previous and abs(speed / previous[0] - 1) > _REGIME_CHANGE:
            previous = []
        self._epoch_speeds = [*previous, speed]
        s_it = sum(self._epoch_speeds) / len(self._epoch_speeds)
        overhead = now - self._last  # validation + epoch end (log, checkpoints, plot)
        self._val_s_per_batch = min(overhead / trainer.params.val_iterations, s_it)
        self._epoch_overhead_s = max(0.0, overhead - trainer.params.val_iterations * self._val_s_per_batch)
        self._epoch_overhead_s = max(self._epoch_overhead_s, 0.1 * overhead)
        self._last = now
        self.measurements["s_per_iteration"] = round(s_it, 4)
        self.measurements["epoch_overhead_s"] = round(overhead, 3)
        if not self.params.replan:
            return
        total = self.fit_iterations(trainer, s_it)
        if abs(total - trainer.total_iterations) > max(2, 0.01 * trainer.total_iterations):
            self.replans.append(
                {"at_iteration": trainer.state.iteration, "old": trainer.total_iterations, "new": total}
            )
            trainer.log.line(f"budget: {s_it:.3f} s/iteration now -> re-sized to {total} iterations")
            trainer.resize(max(total, trainer.state.iteration))

    # -- records -------------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        return {
            "budget_s": self.budget_s,
            "params": self.params.model_dump(mode="json"),
            "decisions": self.decisions,
            "measurements": self.measurements,
            "replans": self.replans,
            "summary": list(self.summary),
            "clock": "wall time since process start, plus earlier sessions when continued",
        }

    def state_dict(self) -> dict[str, Any]:
        return {**self.report(), "sized": self.sized}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.decisions = dict(state.get("decisions", {}))
        self.measurements = dict(state.get("measurements", {}))
        self.replans = list(state.get("replans", []))
        self.sized = bool(state.get("sized", False))
        self.summary = list(state.get("summary", []))
