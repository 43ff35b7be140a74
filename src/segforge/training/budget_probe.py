"""Measuring speed for ``--time-budget`` within a bounded share of the budget.

Two probes, both stopped by a deadline of ``budget.probe_share`` of the budget (5 %) so a
loaded machine cannot spend a third of its budget measuring (field report: 93 s of 240 s went
into timing 47-second two-thread steps, leaving 15 iterations):

* :class:`StepProbe` times CPU precision and thread candidates **on real training steps**: the
  trainer switches autocast dtype / torch threads between its first iterations, so every timed
  step is an optimizer step that counts as training. Its cost is only the slowdown of the
  steps run at the losing settings. It never starts a step that its own estimate says would
  cross the deadline (the slowest step seen so far, doubled for a setting not yet run).
* :func:`time_network_step` times one configuration's network on a synthetic batch before the
  trainer is built (the 2d-vs-3d choice needs the speed of a network not trained in the end).
  These passes are the only budget time not spent training; they share the same deadline.

The first step of each setting pays one-time costs (kernel creation, weight casts), so a
candidate's time is the best of its steps after the first; the run's very first iteration
(with data loading and allocator warm-up) is the first candidate's warm-up.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Setting = tuple[str, "int | None"]  # (precision, torch threads; None = leave as is)
#: a step at a setting not yet run is assumed to take up to this many times the slowest step seen
_NEW_SETTING_FACTOR = 2.0
#: a forward pass of one sample is taken as this share of a training pass per sample (backward ~2x forward)
_FORWARD_SHARE = 1 / 3


@dataclass
class Deadline:
    """``limit_s`` seconds of a clock's ``now`` callable, from the moment it is made."""

    now: Callable[[], float]
    limit_s: float
    start: float = field(default=-1.0)

    def __post_init__(self) -> None:
        if self.start < 0:
            self.start = self.now()

    def spent(self) -> float:
        return self.now() - self.start

    def left(self) -> float:
        return self.limit_s - self.spent()


class StepProbe:
    """Chooses precision, then threads, from timed training steps, within ``limit_s`` of probing.

    Feed it each step's seconds with :meth:`record` and apply :meth:`current` before the next step.
    Precisions are timed at the first thread count; other thread counts at the winning precision.
    """

    def __init__(
        self,
        precisions: tuple[str, ...],
        threads: tuple[int | None, ...],
        limit_s: float,
        repeats: int = 2,
        min_bf16_speedup: float = 1.2,
    ) -> None:
        self.precisions = tuple(precisions)
        self.threads = tuple(threads) or (None,)
        self.limit_s = float(limit_s)
        self.repeats = max(2, repeats)
        self.min_bf16_speedup = min_bf16_speedup
        self._queue: list[Setting] = [(p, self.threads[0]) for p in self.precisions]
        self._index = 0
        self._threads_queued = False
        self._times: dict[Setting, list[float]] = {}
        self._all: list[float] = []
        self.spent_s = 0.0
        self.stopped_by_deadline = False
        self.skipped: list[Setting] = []
        self.done = len(self._queue) == 1 and len(self.threads) == 1

    # -- feeding -------------------------------------------------------------------------------
    def current(self) -> Setting:
        return self.choice() if self.done else self._queue[self._index]

    def record(self, seconds: float) -> None:
        """One step at :meth:`current` took ``seconds``; move on, or stop when the next step would not fit."""
        if self.done:
            return
        if self._all:  # the run's first step is paid by any run: not a probe cost
            self.spent_s += seconds
        self._all.append(float(seconds))
        key = self._queue[self._index]
        self._times.setdefault(key, []).append(float(seconds))
        if len(self._times[key]) >= self.repeats:
            self._advance()
        if not self.done and self.spent_s + self._next_step_estimate() > self.limit_s:
            self.stopped_by_deadline = True
            later = [] if self._threads_queued else [(self._best_precision(), t) for t in self.threads[1:]]
            self.skipped = [s for s in self._queue[self._index :] + later if self.measured(s) is None]
            self.done = True

    def _advance(self) -> None:
        self._index += 1
        if self._index == len(self._queue) and not self._threads_queued and len(self.threads) > 1:
            self._threads_queued = True
            best = self._best_precision()
            self._queue += [(best, t) for t in self.threads[1:]]
        if self._index >= len(self._queue):
            self.done = True

    def _next_step_estimate(self) -> float:
        """The slowest step after the first; doubled when the next step starts a setting not yet run
        (its warm-up, and a precision or thread count up to 2x slower than those seen)."""
        later = self._all[1:]
        seen = max(later) if later else self._all[0]
        fresh = not self._times.get(self._queue[self._index])
        return seen * (_NEW_SETTING_FACTOR if fresh else 1.0)

    # -- results ---------------------------------------------------------------------------------
    def measured(self, setting: Setting) -> float | None:
        times = self._times.get(setting, [])
        return min(times[1:]) if len(times) >= 2 else None

    def _best_precision(self) -> str:
        t0 = self.threads[0]
        known = {p: s for p in self.precisions if (s := self.measured((p, t0))) is not None}
        if "bf16" in known and "fp32" in known:
            return "bf16" if known["fp32"] / known["bf16"] >= self.min_bf16_speedup else "fp32"
        return next(iter(known), self.precisions[0])

    def choice(self) -> Setting:
        precision = self._best_precision()
        known = {t: s for t in self.threads if (s := self.measured((precision, t))) is not None}
        return precision, (min(known, key=known.get) if known else self.threads[0])

    def seconds_per_step(self) -> float:
        """The chosen setting's measured step, else the median step seen (the first only if alone)."""
        measured = self.measured(self.choice())
        if measured is not None:
            return measured
        later = self._all[1:] or self._all
        return statistics.median(later) if later else 0.0

    def steps(self) -> int:
        return len(self._all)

    def report(self) -> dict[str, Any]:
        timed = {f"{p} {t or '-'} threads": round(s, 4) for (p, t) in self._times if (s := self.measured((p, t)))}
        return {
            "steps": self.steps(),
            "spent_s": round(self.spent_s, 3),
            "limit_s": round(self.limit_s, 3),
            "timed_s_per_step": timed,
            "stopped_by_deadline": self.stopped_by_deadline,
            "skipped": [f"{p} {t or '-'} threads" for p, t in self.skipped],
            "steps_count_as_training": True,
        }


def time_network_step(
    network: Any, in_channels: int, patch: tuple[int, ...], batch: int, device: Any, precision: Any, deadline: Deadline
) -> float | None:
    """Seconds of a training pass (forward + backward) of ``network`` on a random batch; ``None``: no time left.

    A pass cannot be interrupted, so the first thing timed is a cheap scout - one sample, forward
    only, about 1/6 of a batch-2 training pass - which gives an estimate (:data:`_FORWARD_SHARE`);
    the scout runs twice where time allows, as its first call carries one-off start-up costs.
    Full passes run only while that estimate fits the time left; the best of them after the
    first (warm-up) is returned, else the first, else the scout's estimate. Gradients are
    dropped; the weights never change.
    """
    import torch

    if deadline.left() <= 0:
        return None

    def timed(fn: Callable[[], None]) -> float:
        started = deadline.now()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return deadline.now() - started

    def scout() -> None:
        with torch.no_grad(), precision.autocast():
            network(torch.randn(1, in_channels, *patch, device=device))

    data = torch.randn(batch, in_channels, *patch, device=device)

    def training_pass() -> None:
        network.zero_grad(set_to_none=True)
        with precision.autocast():
            output = network(data)
        outputs = output if isinstance(output, (list, tuple)) else [output]
        sum(o.float().mean() for o in outputs).backward()

    scout_s = timed(scout)
    if deadline.left() >= scout_s:  # the first call pays one-off costs (CUDA context, cuDNN autotuning, oneDNN
        scout_s = min(scout_s, timed(scout))  # primitives): 0.58 s cold vs 3 ms warm on an H200, enough to skip a fit
    estimate = scout_s * batch / _FORWARD_SHARE
    passes: list[float] = []
    while len(passes) < 2 and deadline.left() >= (passes[-1] if passes else estimate):
        passes.append(timed(training_pass))
    network.zero_grad(set_to_none=True)
    if not passes:
        return estimate
    return min(passes[1:]) if len(passes) > 1 else passes[0]
