"""Run under torchrun (gloo): one DDP step on per-rank slices of a global batch vs one process.

``python -m torch.distributed.run --standalone --nproc_per_node 2 ddp_gradient_check.py OUT.json``
writes, from rank 0, for batch dice off and on: the mean over ranks of the rank losses, the
single-process loss of the whole batch, and the largest gradient difference. Used by
tests/training/test_distributed.py (not a test module itself).
"""

from __future__ import annotations

import json
import sys

import torch
from torch import nn

from segforge.losses.components import LossContext, build_loss
from segforge.training import distributed

GLOBAL_BATCH, NUM_CLASSES = 4, 3


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv3d(1, 4, 3, padding=1), nn.InstanceNorm3d(4, affine=True), nn.LeakyReLU(), nn.Conv3d(4, NUM_CLASSES, 1)
    )


def compare(run: distributed.DistributedRun, batch_dice: bool) -> dict[str, float] | None:
    generator = torch.Generator().manual_seed(1)
    data = torch.randn(GLOBAL_BATCH, 1, 8, 8, 8, generator=generator)
    target = torch.randint(0, NUM_CLASSES, (GLOBAL_BATCH, 1, 8, 8, 8), generator=generator)
    loss_fn = build_loss("dc_ce", {}, LossContext(NUM_CLASSES, batch_dice, [[1, 1, 1]]))
    sizes = [distributed.split_batch(GLOBAL_BATCH, 0.33, run.world_size, r)[0] for r in range(run.world_size)]
    low = sum(sizes[: run.rank])
    high = low + sizes[run.rank]
    model = run.wrap(make_model(), torch.device("cpu"))
    loss = loss_fn(model(data[low:high]), target[low:high])
    loss.backward()
    mean_loss = run.mean(float(loss.detach()))
    if not run.is_main:
        return None
    distributed._LOCAL_ONLY = True  # the reference is one process: no collectives in its loss
    reference = make_model()
    reference_loss = loss_fn(reference(data), target)
    reference_loss.backward()
    distributed._LOCAL_ONLY = False
    pairs = list(zip(model.module.parameters(), reference.parameters(), strict=True))
    return {
        "loss": mean_loss,
        "reference_loss": float(reference_loss),
        "max_grad_diff": max(float((a.grad - b.grad).abs().max()) for a, b in pairs),
        "max_grad": max(float(b.grad.abs().max()) for _, b in pairs),
    }


def main(out: str) -> None:
    run, _ = distributed.init_from_environment(torch.device("cpu"))
    results = {f"batch_dice={flag}": compare(run, flag) for flag in (False, True)}
    if run.is_main:
        with open(out, "w", encoding="utf-8") as fh:
            json.dump({"world_size": run.world_size, **results}, fh)
    distributed.shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
