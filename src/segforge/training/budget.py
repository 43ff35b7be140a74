"""``--time-budget MINUTES``: fit the whole recipe into a wall-clock budget.

Stock nnU-Net stopped after 10 minutes on a 2-core CPU has done ~75 iterations with its LR
still at the start value and predicts nothing. A budgeted run instead:

1. **before building** (:meth:`BudgetController.prepare_params`): batch size 2 instead of the
   planned one (more optimizer steps per second on CPU), per-iteration poly LR, short epochs
   (50 iterations) with few validation batches, **no data augmentation** (measured on the
   hippocampus data, fold 0, batch 2, bf16, equal iterations: after 100 iterations nnU-Net's
   augmentation gave pseudo-Dice 0.00/0.24, mirroring alone about the same, none 0.82/0.81; a
   short run underfits, and augmented - above all mirrored - patches slow the first hundreds of
   iterations down), in-process data loading (workers would compete with torch for the cores)
   and glibc memory reuse;
2. **at start** (:meth:`before_training`): on CPU, time a forward/backward in fp32 and in bf16
   autocast on a real batch and keep bf16 when it is clearly faster;
3. **after a few real iterations** (:meth:`after_iteration`): size the schedule - total
   iterations = what fits in the time left, after validation batches, checkpoints, the final
   save and the predictions after training (end-of-training validation, next-stage inputs;
   :mod:`.prediction_cost`) - and re-anchor the poly schedule so it decays to 0 exactly there;
4. **after each epoch** (:meth:`after_epoch`): re-size from the speed actually observed (other
   processes, thermal limits), keeping the LR curve continuous;
5. **always**: stop at once when the time left would not cover the final save.

The clock counts wall time from the start of the process (interpreter start-up included) and,
for ``--continue``, the time of earlier sessions (stored in checkpoints): the budget is the
total training time of the run. Every decision and measurement goes into ``manifest.json``.
Budgeted runs are not bit-reproducible: how much is trained depends on the machine's speed.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

from segforge.training.clock import Clock
from segforge.training.device import PrecisionChoice, available_cores, cpu_has_bf16, enable_memory_reuse
from segforge.training.device import set_threads as torch_threads
from segforge.training.params import BudgetParams, TrainerParams
from segforge.training.prediction_cost import EndPredictionCost

#: a provisional schedule length until the speed is measured (the LR stays at its start value)
_UNSIZED = 10**9
#: seconds per epoch assumed for checkpoints/plot before the first epoch shows the real cost
_EPOCH_OVERHEAD_GUESS_S = 1.0
#: a forward-only validation batch costs about this share of a training iteration (first guess)
_VAL_SHARE_GUESS = 0.4


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
        self._times: list[float] = []
        self._last = time.perf_counter()
        self._epoch_iteration_times: list[float] = []
        self._val_s_per_batch: float | None = None
        self._epoch_overhead_s = _EPOCH_OVERHEAD_GUESS_S
        self._epoch_speeds: list[float] = []
        self._end_cost: EndPredictionCost | None = None

    # -- 1. params ---------------------------------------------------------------------------
    def prepare_params(self, params: TrainerParams, device_type: str, planned_batch: int) -> TrainerParams:
        """The trainer params for a budgeted run (``--set`` values win only for fields set explicitly here)."""
        b = self.params
        batch = min(b.batch_size, planned_batch) if b.batch_size else planned_batch
        update: dict[str, Any] = {
            "batch_size": batch,
            "lr_step": "iteration",
            "iterations_per_epoch": b.iterations_per_epoch,
            "val_iterations": b.val_iterations,
            "final_val_iterations": b.final_val_iterations,
            "initial_lr": b.initial_lr or params.initial_lr,
            "warmup_iterations": b.warmup_iterations,
            "checkpoint_every": 1,
            "ema_keep": b.ema_keep,
        }
        update["augmentation"] = budget_augmentation(params.augmentation, b.augmentation)
        self.decisions.update(
            budget_s=self.budget_s,
            batch_size={"value": batch, "planned": planned_batch, "why": "more optimizer steps per second"},
            iterations_per_epoch=b.iterations_per_epoch,
            val_iterations=b.val_iterations,
            lr={"initial": update["initial_lr"], "schedule": "poly 0.9 per iteration, sized to the budget"},
            augmentation=b.augmentation,
        )
        if device_type == "cpu":
            cores = available_cores()
            update["num_workers"] = 0
            torch_threads(params.threads or cores)
            reuse = enable_memory_reuse() if b.memory_reuse else False
            self.decisions.update(
                threads={
                    "value": params.threads or cores,
                    "why": "set explicitly" if params.threads else "one per core",
                },
                num_workers={"value": 0, "why": "workers would compete with torch for the cores"},
                memory_reuse={"value": reuse, "why": "glibc keeps freed blocks: fewer page faults"},
            )
        return params.model_copy(update=update)

    # -- 2. precision ------------------------------------------------------------------------
    def before_training(self, trainer: Any) -> None:
        """Pick the CPU precision (fresh runs only) and make the schedule provisional until measured."""
        if self.sized:  # a resumed run keeps the precision it measured
            chosen = self.decisions.get("precision", {}).get("value")
            if chosen and not trainer.context.request.fp32:
                trainer.precision = PrecisionChoice(chosen, trainer.device.type)
            self._last = time.perf_counter()
            return
        from segforge.training.progress_plot import preload

        preload()  # import matplotlib now: a first import inside an epoch would look like per-epoch cost
        if trainer.device.type == "cpu":
            self.choose_cpu_settings(trainer)
        trainer.total_iterations = _UNSIZED
        trainer.schedule.retarget(trainer.state.iteration, _UNSIZED)
        self._last = time.perf_counter()

    def choose_cpu_settings(self, trainer: Any) -> None:
        """Threads first (only when other processes load the machine), then fp32 vs bf16 at that count.

        Each candidate costs two forward/backward passes (the first is a warm-up), so a quiet
        machine spends about five seconds here on the hippocampus network.
        """
        self._timings: dict[tuple[str, int], float] = {}
        candidate = self._precision_candidate(trainer)
        if trainer.params.threads is None:
            self.choose_threads(trainer, candidate)
        if candidate == "bf16" and self.params.precision == "auto" and not trainer.context.request.fp32:
            trainer.precision = self.compare_precisions(trainer)
        else:
            trainer.precision = PrecisionChoice(candidate, "cpu")

    def _precision_candidate(self, trainer: Any) -> str:
        """bf16 when it may be used (then timed against fp32), else fp32; records why not."""
        if trainer.context.request.fp32:
            self.decisions["precision"] = {"value": "fp32", "why": "--fp32"}
            return "fp32"
        if self.params.precision != "auto":
            self.decisions["precision"] = {"value": self.params.precision, "why": "set by budget.precision"}
            return self.params.precision
        if not cpu_has_bf16():
            self.decisions["precision"] = {"value": "fp32", "why": "the CPU has no native bf16 (AVX512-BF16/AMX)"}
            return "fp32"
        return "bf16"

    def _timed(self, trainer: Any, precision: str, threads: int) -> float:
        import torch

        key = (precision, threads)
        if key not in self._timings:
            torch.set_num_threads(threads)
            self._timings[key] = self._time_step(trainer, PrecisionChoice(precision, "cpu"))
        return self._timings[key]

    def compare_precisions(self, trainer: Any) -> PrecisionChoice:
        import torch

        threads = torch.get_num_threads()
        timings = {name: self._timed(trainer, name, threads) for name in ("bf16", "fp32")}
        speedup = timings["fp32"] / timings["bf16"]
        pick = "bf16" if speedup >= self.params.min_bf16_speedup else "fp32"
        self.measurements["precision_s_per_step"] = {k: round(v, 4) for k, v in timings.items()}
        self.decisions["precision"] = {
            "value": pick,
            "why": f"bf16 autocast ran {speedup:.2f}x as fast as fp32 (threshold {self.params.min_bf16_speedup})",
        }
        trainer.log.line(f"budget: fp32 {timings['fp32']:.3f} s/step, bf16 {timings['bf16']:.3f} s/step -> {pick}")
        return PrecisionChoice(pick, "cpu")

    def choose_threads(self, trainer: Any, precision: str) -> None:
        """One torch thread per core, unless other processes keep the cores busy: then time fewer.

        OpenMP threads that wait for a descheduled sibling spin; on a 2-core machine shared with
        another busy process, one thread was measured 1.7-4x faster than two.
        """
        import os

        import torch

        cores = available_cores()
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        fewer = max(1, cores // 2)
        if load < 1.0 or fewer == cores:
            self.decisions["threads"] = {"value": cores, "why": f"one per core (load average {load:.1f})"}
            torch.set_num_threads(cores)
            return
        timings = {threads: self._timed(trainer, precision, threads) for threads in (fewer, cores)}
        best = min(timings, key=timings.get)
        torch.set_num_threads(best)
        self.measurements["threads_s_per_step"] = {str(k): round(v, 4) for k, v in timings.items()}
        self.decisions["threads"] = {
            "value": best,
            "why": f"load average {load:.1f} from other processes: timed {cores} and {fewer} threads ({precision})",
        }
        trainer.params = trainer.params.model_copy(update={"threads": best})
        shown = ", ".join(f"{k} threads {v:.2f} s" for k, v in timings.items())
        trainer.log.line(f"budget: machine busy (load {load:.1f}): {shown} per step -> {best}")

    @staticmethod
    def _time_step(trainer: Any, precision: PrecisionChoice, repeats: int = 2) -> float:
        """Best time after the first of ``repeats`` forward + loss + backward passes on batch 0.

        Gradients are discarded, so the weights do not change.
        """
        data, target = trainer.to_device(trainer.train_loader.batch(0, 0))
        times = []
        for _ in range(max(repeats, 2)):  # the first pass pays one-time costs (kernels, casts)
            started = time.perf_counter()
            trainer.optimizer.zero_grad(set_to_none=True)
            with precision.autocast():
                loss = trainer.loss(trainer.model(data), target)
            loss.backward()
            times.append(time.perf_counter() - started)
        trainer.optimizer.zero_grad(set_to_none=True)
        return min(times[1:])

    # -- 3./5. per iteration -------------------------------------------------------------------
    def after_iteration(self, trainer: Any) -> None:
        now = time.perf_counter()
        self._times.append(now - self._last)
        self._epoch_iteration_times.append(now - self._last)
        self._last = now
        if not self.sized and len(self._times) >= self.params.measure_iterations:
            self.size(trainer)
        if self.sized and self.clock.elapsed() + self._final_cost(trainer) > self.budget_s:
            if trainer.total_iterations > trainer.state.iteration:
                trainer.log.warning(
                    f"budget: time is up at iteration {trainer.state.iteration} of {trainer.total_iterations}; "
                    "stopping early"
                )
                self.replans.append({"at_iteration": trainer.state.iteration, "hard_stop": True})
                trainer.total_iterations = trainer.state.iteration

    def _val_cost(self, s_per_iteration: float) -> float:
        return self._val_s_per_batch if self._val_s_per_batch is not None else _VAL_SHARE_GUESS * s_per_iteration

    def _final_cost(self, trainer: Any) -> float:
        """Seconds the end of training needs: final validation batches, what an epoch end costs (final
        checkpoint, plot, manifest), the predictions after training, plus the fixed reserve."""
        s_it = self.measurements.get("s_per_iteration", 0.0)
        final_val = self.params.final_val_iterations * self._val_cost(s_it)
        return self.params.reserve_s + final_val + self._epoch_overhead_s + self.end_predictions_s(trainer)

    def end_predictions_s(self, trainer: Any) -> float:
        """Estimated seconds of end-of-training validation and next-stage predictions (prediction_cost.py).

        A forward pass of one patch is priced as a validation batch over the batch size: the
        batches run the same network in the same precision without a backward pass.
        """
        from segforge.training.prediction_cost import end_prediction_cost

        if self._end_cost is None:
            self._end_cost = end_prediction_cost(trainer)
            self.decisions["end_predictions"] = {
                **self._end_cost.as_dict(),
                "why": "validation / next-stage predictions after training are counted in the budget",
            }
        s_it = self.measurements.get("s_per_iteration", 0.0)
        seconds = self._end_cost.seconds(self._val_cost(s_it) / max(1, trainer.batch_size))
        self.measurements["end_predictions_estimated_s"] = round(seconds, 2)
        return seconds

    def record_end_predictions(self, seconds: float) -> None:
        """What the predictions after training really took (shown beside the estimate in the manifest)."""
        self.measurements["end_predictions_s"] = round(seconds, 2)

    def fit_iterations(self, trainer: Any, s_per_iteration: float) -> int:
        """Total iterations (from the run's start) that fit in the time left at the current speed."""
        p = trainer.params
        left = self.budget_s * (1 - self.params.safety_fraction) - self.clock.elapsed() - self._final_cost(trainer)
        per_epoch_fixed = p.val_iterations * self._val_cost(s_per_iteration) + self._epoch_overhead_s
        epochs_left = max(left, 0.0) / (p.iterations_per_epoch * s_per_iteration + per_epoch_fixed)
        train_time = left - math.ceil(epochs_left) * per_epoch_fixed
        return trainer.state.iteration + max(0, int(train_time / s_per_iteration))

    def size(self, trainer: Any) -> None:
        """Fix the schedule from the measured speed (the first iteration, with its set-up cost, excluded)."""
        s_it = statistics.median(self._times[1:])
        self.measurements["s_per_iteration"] = round(s_it, 4)
        self.measurements["measured_after_s"] = round(self.clock.elapsed(), 2)
        total = self.fit_iterations(trainer, s_it)
        trainer.total_iterations = total
        trainer.schedule.retarget(trainer.state.iteration, total)
        self.sized = True
        epochs = math.ceil(total / trainer.params.iterations_per_epoch)
        self.decisions["schedule"] = {"total_iterations": total, "epochs": epochs}
        trainer.log.line(
            f"budget: {s_it:.3f} s/iteration measured -> {total} iterations in {epochs} epochs of "
            f"{trainer.params.iterations_per_epoch}, poly LR decaying to 0 at iteration {total}"
        )
        trainer.write_manifest("running")

    # -- 4. per epoch --------------------------------------------------------------------------
    def after_epoch(self, trainer: Any) -> None:
        """Re-size from this epoch's observed speed and validation/checkpoint cost."""
        now = time.perf_counter()
        times, self._epoch_iteration_times = self._epoch_iteration_times, []
        if not self.sized or not times or trainer.done():
            self._last = now
            return
        # the last two epochs: recent enough to follow the machine, smooth enough not to chase one slow epoch
        self._epoch_speeds = [*self._epoch_speeds[-1:], sum(times) / len(times)]
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
            trainer.total_iterations = max(total, trainer.state.iteration)
            trainer.schedule.retarget(trainer.state.iteration, trainer.total_iterations)

    # -- records -------------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        return {
            "budget_s": self.budget_s,
            "params": self.params.model_dump(mode="json"),
            "decisions": self.decisions,
            "measurements": self.measurements,
            "replans": self.replans,
            "clock": "wall time since process start, plus earlier sessions when continued",
        }

    def state_dict(self) -> dict[str, Any]:
        return {**self.report(), "sized": self.sized}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.decisions = dict(state.get("decisions", {}))
        self.measurements = dict(state.get("measurements", {}))
        self.replans = list(state.get("replans", []))
        self.sized = bool(state.get("sized", False))
