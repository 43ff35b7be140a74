"""What the predictions after training will cost, so that ``--time-budget`` can leave room for them.

A finished fold still predicts its validation cases with the full predictor (end-of-training
validation) and, for ``3d_lowres``, the next stage's inputs. Both are sliding-window passes over
whole cases followed by export: on a 2-core CPU that is tens of seconds for the hippocampus
and minutes for CT, too much to leave outside a budget that promises the command ends in time.

The cost is counted in network forward passes of one patch, known from the preprocessed case
shapes (``shape_after_resampling`` in each case's properties, no array is read), the patch,
the step size 0.5 and the mirror flips prediction will use; the budget prices a pass by timing
the network as the predictor will run it (:func:`time_patch_forward`: eval mode, no gradients,
the predictor's precision and tile batching). Pricing it from the validation batches instead
over-reserved 4x on a real hippocampus fold 0 (56 s kept, 13 s used, of a 2-minute budget): those
batches' measured cost carries the epoch end (plot, checkpoints) and a backward-free but
deep-supervised, training-precision pass. Export (resampling to the raw geometry, writing, scoring) is a
guess per case that grows with the raw case's voxels and classes; the manifest records the
estimate next to the time the predictions really took.

Fold ``all`` under a budget predicts none of its (training) cases inside the budget, so nothing is
reserved for them (:mod:`.fold_all_budget`).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from segforge.training.protocols import Trainer

#: load + export + write + evaluate of one small case, besides its forward passes (hippocampus fold 0 on
#: a shared 2-core CPU: 40 cases in 19.3 s, of which 278 timed passes 15.5 s, so ~0.1 s per case; kept a
#: little above so that the reserve errs on the safe side)
CASE_OVERHEAD_S = 0.15
#: export per raw voxel and class (resampling one class at a time into a running argmax)
EXPORT_S_PER_VOXEL_CLASS = 3e-8
#: prediction tiles overlap by half, as the predictor's default step size
STEP_SIZE = 0.5
#: the timing pass is repeated (the first pays one-time costs) only when it took less than this
_REPEAT_BELOW_S = 1.0


@dataclass(frozen=True)
class EndPredictionCost:
    """The forward passes and export seconds the end of a training run needs (zero when it predicts nothing)."""

    cases: int
    forward_passes: int
    export_s: float

    def seconds(self, s_per_patch: float) -> float:
        """Estimated wall seconds when one patch's forward pass takes ``s_per_patch``."""
        return self.forward_passes * s_per_patch + self.export_s

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "export_s": round(self.export_s, 2)}


def tiles_per_case(shape: list[int], patch: tuple[int, ...]) -> int:
    """Sliding-window tiles over a preprocessed ``shape`` (a 2D patch walks the first axis slice by slice)."""
    from segforge.inference.tiling import compute_steps

    lead = len(shape) - len(patch)
    padded = [max(int(s), int(p)) for s, p in zip(shape[lead:], patch, strict=True)]
    tiles = math.prod(len(axis) for axis in compute_steps(padded, patch, STEP_SIZE))
    return tiles * math.prod(int(s) for s in shape[:lead])


def end_prediction_cases(trainer: Trainer) -> list[str]:
    """Cases predicted after training: validation (unless switched off or deferred) and the next stage's inputs.

    A budgeted fold ``all`` run defers its validation (:mod:`.fold_all_budget`): nothing is reserved for it.
    """
    from segforge.training.cascade import next_stage_cases
    from segforge.training.fold_all_budget import validation_deferred

    context = trainer.context
    cases: list[str] = []
    if getattr(trainer.params, "run_validation", True) and validation_deferred(trainer) is None:
        cases += list(context.val_ids)
    if context.configuration.next_stage is not None:
        cases += next_stage_cases(context)
    return cases


def end_prediction_cost(trainer: Trainer) -> EndPredictionCost:
    """Count the passes from the preprocessed case properties of the run's data folder."""
    from segforge.data.case_store import read_properties
    from segforge.errors import SegforgeError
    from segforge.inference.mirroring import mirror_combinations

    cases = end_prediction_cases(trainer)
    if not cases:
        return EndPredictionCost(0, 0, 0.0)
    patch = tuple(int(p) for p in trainer.patch_size)
    flips = len(mirror_combinations(tuple(trainer.mirror_axes()) or None))
    classes = max(2, int(trainer.context.num_classes))
    passes, export_s = 0, 0.0
    for case_id in cases:
        try:
            props = read_properties(trainer.context.data_folder, case_id)
        except SegforgeError:  # an unreadable case fails later with its own error; count it as one tile
            passes += flips
            export_s += CASE_OVERHEAD_S
            continue
        passes += tiles_per_case(list(props.shape_after_resampling), patch) * flips
        export_s += CASE_OVERHEAD_S + math.prod(props.shape_before_cropping) * classes * EXPORT_S_PER_VOXEL_CLASS
    return EndPredictionCost(len(cases), passes, export_s)


def time_patch_forward(trainer: Trainer) -> float:
    """Seconds per patch of prediction's forward passes, timed on the trainer's network now.

    As the predictor runs them: eval mode, no gradients, its ``auto`` precision, as many patches
    per pass as its voxel limit allows. The input is fixed pseudo-random data from a private
    generator (constant tiles would be predicted once; the global RNG stays untouched, so a
    deterministic run is not changed by the timing).
    """
    import torch

    from segforge.inference.sliding_window import DEFAULT_MAX_BATCH_VOXELS, resolve_precision

    patch = tuple(int(p) for p in trainer.patch_size)
    group = max(1, DEFAULT_MAX_BATCH_VOXELS // math.prod(patch))
    data = torch.rand((group, trainer.context.in_channels, *patch), generator=torch.Generator().manual_seed(0))
    data = data.to(trainer.device)
    dtype = resolve_precision("auto", trainer.device)
    autocast = contextlib.nullcontext() if dtype is None else torch.autocast(trainer.device.type, dtype=dtype)
    network = trainer.network
    was_training = network.training
    network.eval()
    times: list[float] = []
    try:
        with torch.no_grad(), autocast:
            while len(times) < 2 and (not times or times[0] < _REPEAT_BELOW_S):
                started = time.perf_counter()
                network(data)
                if trainer.device.type == "cuda":
                    torch.cuda.synchronize(trainer.device)
                times.append(time.perf_counter() - started)
    finally:
        network.train(was_training)
    return min(times) / group
