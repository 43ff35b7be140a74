"""``--backend auto``: pick the backend that finishes soonest, from a measurement and what earlier runs saw.

The rule (:func:`choose_backend`, a pure function so it can be tested with a made-up speed
model): each candidate's expected time is its one-time cost (compile, export) plus the tile
evaluations still to come times its seconds per evaluation; the smallest wins if it saves at
least 10 % of eager's time (else torch eager, also when nothing is known to beat it). Inputs:

- torch eager's speed is *measured* on the second real batch of the run (its result is used,
  so the measurement costs nothing; the first carries one-time costs);
- another backend's speed is what an earlier run measured on this machine for this network
  shape, patch and precision (:class:`SpeedMemory`, a JSON file beside the ONNX cache), taken
  relative to eager's speed then, else a prior: ``compiled`` 0.95x eager after a ~25 s compile (docs/prediction.md);
  ONNX Runtime and OpenVINO have no prior and are tried only after a run with ``--backend
  onnxruntime|openvino`` has measured them here;
- the evaluations to come are estimated by the caller from the cases' shapes (tiles x mirror
  flips x folds), and ``auto`` stays eager when that estimate is unknown.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segforge.atomic import atomic_write_json
from segforge.settings import cache_root

#: what a backend nobody measured here is assumed to cost: (speed relative to eager, one-time seconds);
#: compiled vs the lean eager U-Net (networks.cpu_inference) on the CT network in bf16: 0.94-0.97x, after a
#: 19-25 s compile. In fp32 eager is faster still where the Winograd convolutions apply (compiled graphs
#: see the stock layers): 18 CT tiles on AVX2 took 75 s eager, 113 s compiled (two runs, benchmarks/README.md).
#: Alone, this prior never passes MIN_SAVING.
PRIORS: dict[str, tuple[float, float]] = {"compiled": (0.95, 25.0)}
#: another backend must be expected to save this share of eager's time: the estimate is rough, and a compile
#: adds ~0.5 GB of peak memory (inductor) for the gain
MIN_SAVING = 0.10


@dataclass(frozen=True)
class Estimate:
    """What one backend is expected to cost: a one-time setup plus seconds per tile evaluation."""

    name: str
    setup_s: float
    per_eval_s: float
    source: str  # "measured now", "measured here before", "prior"

    def total(self, evaluations: int) -> float:
        return self.setup_s + evaluations * self.per_eval_s


def choose_backend(estimates: list[Estimate], evaluations: int) -> tuple[str, str]:
    """The backend with the smallest expected time for ``evaluations`` more tile evaluations, and why.

    Eager torch stays unless the best other backend saves at least :data:`MIN_SAVING` of its time.
    """
    ranked = sorted(estimates, key=lambda e: (e.total(evaluations), e.name != "torch"))
    best = ranked[0]
    eager = next((e for e in estimates if e.name == "torch"), None)
    if (
        eager is not None
        and best is not eager
        and (best.total(evaluations) > (1 - MIN_SAVING) * eager.total(evaluations))
    ):
        ranked.remove(eager)
        ranked.insert(0, eager)
        best = eager
    parts = [
        f"{e.name} {e.total(evaluations):.0f} s ({e.setup_s:.0f} s + {evaluations} x {e.per_eval_s:.3g} s, {e.source})"
        for e in ranked
    ]
    return best.name, f"{best.name} for ~{evaluations} tile evaluations: " + "; ".join(parts)


def machine_signature(network_signature: str, threads: int) -> str:
    """What a speed depends on: CPU model, thread count, network shape and patch."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}|{threads} threads|{network_signature}"


class SpeedMemory:
    """Speeds measured here, relative to eager, per machine signature and backend (a small JSON file)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_root() / "backend_speeds.json"

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, signature: str) -> dict[str, dict[str, float]]:
        entry = self.load().get(signature, {})
        return entry if isinstance(entry, dict) else {}

    def record(self, signature: str, backend: str, per_eval_s: float, setup_s: float) -> None:
        """Remember ``backend``'s seconds per tile evaluation and one-time cost (best effort: it is a cache)."""
        data = self.load()
        data.setdefault(signature, {})[backend] = {"per_eval_s": round(per_eval_s, 6), "setup_s": round(setup_s, 2)}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.path, data)
        except OSError:
            pass


def estimates_for(
    eager_per_eval_s: float, available: list[str], known: dict[str, dict[str, float]], exported_cached: bool
) -> list[Estimate]:
    """Torch (measured now) and every available backend with a speed measured here before, or a prior.

    A remembered speed is used relative to eager's remembered speed, so a machine that is
    busier (or quieter) now than then scales all backends alike.
    """
    out = [Estimate("torch", 0.0, eager_per_eval_s, "measured now")]
    torch_then = known.get("torch", {}).get("per_eval_s")
    for name in available:
        if name in known and torch_then:
            ratio = known[name]["per_eval_s"] / torch_then
            setup = 0.0 if name in ("onnxruntime", "openvino") and exported_cached else known[name]["setup_s"]
            out.append(Estimate(name, setup, eager_per_eval_s * ratio, "measured here before"))
        elif name in PRIORS:
            ratio, setup = PRIORS[name]
            out.append(Estimate(name, setup, eager_per_eval_s * ratio, "prior"))
    return out
