"""The forwards a predictor uses for one run's backend: ``auto`` resolved once, every speed remembered.

:class:`BackendRun` is shared by the forwards of all networks (folds) of one predictor. With
``auto``, the first two batches go through eager torch and the second is timed (the first carries
one-time costs: on the CPU the heap grows to its working size and oneDNN builds its kernels,
~1.4x a later pass for the CT network); :func:`.choice.choose_backend` then picks the backend
for the rest of the run (:attr:`BackendRun.reason` says why, for the
command's output and records). Whatever the backend, its first two calls are timed and its
speed is remembered for later ``auto`` decisions (:class:`.choice.SpeedMemory`).
"""

from __future__ import annotations

import importlib.util
import time
from typing import TYPE_CHECKING, Any

from segforge.inference.backends import EXPORTED, make_forward
from segforge.inference.backends.choice import (
    SpeedMemory,
    choose_backend,
    estimates_for,
    machine_signature,
)

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

#: ``auto`` decides after this many eager batches, timing the last one
WARM_BATCH = 2


def available_backends(device_type: str) -> list[str]:
    """The non-eager backends that can run here (exported ones only where their package is installed)."""
    names = ["compiled"]
    if device_type == "cpu":
        names += [n for n in EXPORTED if importlib.util.find_spec(n) is not None]
    return names


def network_signature(net: nn.Module, x: torch.Tensor, autocast: Any) -> str:
    params = sum(p.numel() for p in net.parameters())
    return f"{type(net).__qualname__}|{params} params|input {list(x.shape[1:])}|autocast {autocast}"


class BackendRun:
    """The backend of one prediction run (see the module docstring)."""

    def __init__(
        self, requested: str, device_type: str = "cpu", expected_evaluations: int | None = None,
        autocast: Any = None, memory: SpeedMemory | None = None,
    ) -> None:  # fmt: skip
        self.requested, self.device_type, self.autocast = requested, device_type, autocast
        self.expected = expected_evaluations
        self.chosen: str | None = None if requested == "auto" else requested
        self.reason = "" if requested == "auto" else f"{requested} (asked for)"
        self.memory = memory or SpeedMemory()
        self.done = 0
        self.eager_batches = 0

    def forward_for(self, net: nn.Module) -> Any:
        return _RunForward(self, net)

    def decide(self, net: nn.Module, x: torch.Tensor, eager_per_eval: float) -> None:
        """Resolve ``auto`` from eager's speed on a warm batch and the evaluations still to come."""
        from segforge.inference.backends.exported import cache_dir, model_key

        signature = machine_signature(network_signature(net, x, self.autocast), _threads())
        self.memory.record(signature, "torch", eager_per_eval, 0.0)
        remaining = None if self.expected is None else max(0, self.expected - self.done)
        if not remaining:
            self.chosen, self.reason = "torch", "torch (auto: no estimate of the work to come)"
            return
        known = self.memory.get(signature)
        cached = (cache_dir() / f"{model_key(net, tuple(x.shape[1:]))}.onnx").is_file()
        estimates = estimates_for(eager_per_eval, available_backends(self.device_type), known, cached)
        self.chosen, why = choose_backend(estimates, remaining)
        self.reason = f"{self.chosen} (auto: {why})"

    def observe(self, net: nn.Module, x: torch.Tensor, timings: list[tuple[float, int]]) -> None:
        """After a backend's second call: remember its speed and one-time cost."""
        (first_s, first_n), (second_s, second_n) = timings[:2]
        per_eval = second_s / second_n
        setup = max(0.0, first_s - per_eval * first_n)
        signature = machine_signature(network_signature(net, x, self.autocast), _threads())
        self.memory.record(signature, str(self.chosen), per_eval, setup)


class _RunForward:
    """One network's forward in a run; ``impl`` is the backend's callable (built at once unless ``auto``)."""

    def __init__(self, run: BackendRun, net: nn.Module) -> None:
        self.run, self.net = run, net
        # an explicit backend is built now, so a missing extra is one line before any case is read
        self.impl: Any = None if run.chosen is None else make_forward(run.chosen, net, run.device_type)
        self.timings: list[tuple[float, int]] = []

    def __call__(self, x: torch.Tensor) -> Any:
        run = self.run
        start = time.perf_counter()
        if run.chosen is None:
            out = self.net(x)
            run.done += x.shape[0]
            run.eager_batches += 1
            if run.eager_batches >= WARM_BATCH:  # the first pass carries one-time costs
                run.decide(self.net, x, (time.perf_counter() - start) / x.shape[0])
            return out
        if self.impl is None:
            self.impl = make_forward(run.chosen, self.net, run.device_type)
        out = self.impl(x)
        run.done += x.shape[0]
        if len(self.timings) < 2:
            self.timings.append((time.perf_counter() - start, x.shape[0]))
            if len(self.timings) == 2 and not getattr(self.impl, "failed", None):
                run.observe(self.net, x, self.timings)
        return out


def _threads() -> int:
    import torch

    return torch.get_num_threads()
