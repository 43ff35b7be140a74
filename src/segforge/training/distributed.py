"""Data-parallel training under ``torchrun``: process group, DDP, per-rank batches, agreement.

``torchrun --nproc_per_node G -m segforge train ...`` starts G copies of the same command with
``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR``/``MASTER_PORT`` in their environment.
:func:`init_from_environment` sees them and joins the process group (NCCL on CUDA, gloo on
the CPU); without them everything here is a no-op, so single-process training pays nothing.

What makes G ranks train like one process with the global batch:

* the global batch ``B`` is split into contiguous per-rank slices (sizes differ by at most
  one), and the forced-foreground items, which are the *last* items of nnU-Net's global
  batch, are given to the ranks that hold those positions (:func:`split_batch`), so the
  global number of oversampled patches per step is the single-process one;
* every rank draws its patches and augmentation from its own seed (:meth:`DistributedRun.rank_seed`);
* DDP averages gradients, so a step sees the mean gradient of all ranks' slices;
* validation TP/FP/FN are summed and losses averaged over ranks, so every rank computes
  the same pseudo-Dice and EMA, and takes the same "new best" decision;
* after every iteration the ranks agree (one small all-reduce) on whether a signal asked
  to stop and on the schedule length, which only rank 0's time budget may change.

Only rank 0 writes files (checkpoints, log file, plot, manifest); the others log to stderr
with a ``[rank N]`` prefix (:mod:`.rank_log`). A rank that dies makes its peers' next collective fail (the
connection drops) or time out after ``SEGFORGE_DIST_TIMEOUT_S`` seconds, and torchrun stops
the whole job, so a job never hangs forever.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from segforge.errors import SegforgeError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from segforge.training.protocols import Trainer

#: environment variable with the process-group timeout in seconds (default: see :func:`default_timeout_s`)
TIMEOUT_ENV = "SEGFORGE_DIST_TIMEOUT_S"
#: test hook: ``RANK:ITERATION`` makes that rank SIGKILL itself after that iteration
FAULT_ENV = "SEGFORGE_FAULT_KILL_RANK_AT"
_ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class DistributedError(SegforgeError):
    """A collective failed: a peer rank died, or did not answer within the process-group timeout."""


def default_timeout_s(device_type: str) -> float:
    """How long a rank waits for its peers in one collective before failing.

    Long enough for rank 0 to save a checkpoint and draw the plot while the others wait,
    short enough that a dead peer does not keep GPUs busy for nnU-Net's hour: 5 minutes on
    CUDA, 2 on the CPU (where nothing is slower than a step of the tests' networks).
    """
    return 300.0 if device_type == "cuda" else 120.0


def split_batch(global_batch: int, oversample: float, world_size: int, rank: int) -> tuple[int, float]:
    """This rank's batch size and foreground-oversampling fraction for a global batch.

    The global batch is cut into ``world_size`` contiguous slices, the first
    ``global_batch % world_size`` one item larger. Single-process sampling forces the *last*
    ``B - round(B (1 - oversample))`` items to foreground; a rank gets the fraction that
    makes exactly the forced items of its slice forced (``k / b`` for ``k`` of ``b``), so the
    ranks together force as many items as one process would.
    """
    from segforge.data.sampling import forced_foreground_items

    if global_batch < world_size:
        raise UsageError(
            f"batch size {global_batch} cannot be split over {world_size} processes (each needs at least 1)",
            hint=f"use at most {global_batch} processes, or --set batch_size={world_size} (or more)",
        )
    sizes = [global_batch // world_size + (1 if r < global_batch % world_size else 0) for r in range(world_size)]
    low = sum(sizes[:rank])
    forced = forced_foreground_items(global_batch, oversample)[low : low + sizes[rank]]
    return sizes[rank], sum(forced) / sizes[rank]


@dataclass(frozen=True)
class DistributedRun:
    """This process's place in the job; world size 1 (the default) makes every method a no-op."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def rank_seed(self, seed: int) -> int:
        """The loaders' seed on this rank: ``seed`` itself in one process, a distinct one per rank else."""
        if not self.active:
            return int(seed)
        return int(np.random.SeedSequence([int(seed), self.rank, 0x5EED]).generate_state(1)[0])

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block first (it may write shared files), the others after it finished."""
        if not self.is_main:
            self.barrier()
        yield
        if self.is_main:
            self.barrier()

    @property
    def comm_device(self) -> Any:
        """Where collective tensors must live: this rank's GPU for NCCL, the CPU for gloo."""
        import torch

        return torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")

    def sum_array(self, values: Any) -> np.ndarray:
        """Element-wise sum over ranks (float64 or int64, as given)."""
        array = np.asarray(values)
        if not self.active:
            return array
        import torch
        import torch.distributed as dist

        dtype = torch.float64 if np.issubdtype(array.dtype, np.floating) else torch.int64
        tensor = torch.as_tensor(array, dtype=dtype).to(self.comm_device, copy=True)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.cpu().numpy().astype(array.dtype)

    def mean(self, value: float) -> float:
        """The mean of ``value`` over ranks (the same number on every rank)."""
        if not self.active:
            return float(value)
        return float(self.sum_array(np.array([value], dtype=np.float64))[0] / self.world_size)

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank; JSON data only (sent as UTF-8 bytes, no pickle)."""
        if not self.active:
            return obj
        import torch
        import torch.distributed as dist

        payload = json.dumps(obj).encode("utf-8") if self.is_main else b""
        size = torch.tensor([len(payload)], dtype=torch.int64, device=self.comm_device)
        dist.broadcast(size, src=0)
        buffer = torch.zeros(int(size.item()), dtype=torch.uint8)
        if self.is_main:
            buffer = torch.tensor(list(payload), dtype=torch.uint8)
        buffer = buffer.to(self.comm_device)
        dist.broadcast(buffer, src=0)
        return json.loads(bytes(buffer.cpu().tolist()).decode("utf-8"))

    def wrap(self, model: Any, device: Any) -> Any:
        """``model`` in DistributedDataParallel (gradients averaged in backward), or as is.

        ``find_unused_parameters``: the lowest deep-supervision head has loss weight 0 (nnU-Net's
        weights), so its parameters get no gradient; DDP must be told not to wait for them.
        """
        if not self.active:
            return model
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=True)


_CURRENT = DistributedRun()


def current() -> DistributedRun:
    """The job this process belongs to (world size 1 unless :func:`init_from_environment` joined one)."""
    return _CURRENT


def detect_environment(environ: dict[str, str] | None = None) -> tuple[int, int, int] | None:
    """``(rank, world_size, local_rank)`` when launched by torchrun with more than one process, else None."""
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env or int(env["WORLD_SIZE"]) <= 1:
        return None
    missing = [k for k in _ENV_KEYS if k not in env]
    if missing:
        raise UsageError(
            f"WORLD_SIZE={env['WORLD_SIZE']} is set but {', '.join(missing)} is not",
            hint="launch with `torchrun --nproc_per_node G -m segforge train ...` (or `segforge train --num-gpus G`)",
        )
    return int(env["RANK"]), int(env["WORLD_SIZE"]), int(env["LOCAL_RANK"])


def timeout_s(device_type: str) -> float:
    raw = os.environ.get(TIMEOUT_ENV)
    if raw is None:
        return default_timeout_s(device_type)
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise UsageError(f"{TIMEOUT_ENV}={raw}: not a positive number of seconds", hint=f"e.g. {TIMEOUT_ENV}=120")
    return value


def init_from_environment(device: Any) -> tuple[DistributedRun, Any]:
    """Join torchrun's process group when launched by it; returns the run and this rank's device.

    On CUDA each rank takes GPU ``LOCAL_RANK`` (NCCL); on the CPU all ranks use gloo. Calling
    it again in the same process returns the run already joined.
    """
    global _CURRENT
    found = detect_environment()
    if found is None:
        return _CURRENT, device
    rank, world_size, local_rank = found
    import torch
    import torch.distributed as dist

    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise UsageError(
                f"LOCAL_RANK {local_rank} but torch sees {torch.cuda.device_count()} GPU(s) on this node",
                hint="start at most one process per GPU (--nproc_per_node), or train with --device cpu",
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        from datetime import timedelta

        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s(device.type)))
    _CURRENT = DistributedRun(rank, world_size, local_rank, backend)
    return _CURRENT, device


def shutdown() -> None:
    """Leave the process group (at the end of training) and forget the run."""
    global _CURRENT
    if _CURRENT.active:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    _CURRENT = DistributedRun()


def _is_collective_failure(exc: BaseException) -> bool:
    import torch.distributed as dist

    if isinstance(exc, getattr(dist, "DistError", ())):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(
        word in text for word in ("gloo", "Gloo", "NCCL", "Connection closed", "Connection reset", "timed out")
    )


@contextlib.contextmanager
def collective_failures(run: DistributedRun, where: Any) -> Iterator[None]:
    """Turn a failed collective (peer died, timeout) into a one-line :class:`DistributedError`.

    ``where`` is called for the "at epoch E, iteration I" part of the message.
    """
    try:
        yield
    except Exception as exc:
        if not run.active or isinstance(exc, SegforgeError) or not _is_collective_failure(exc):
            raise
        first = " ".join(str(exc).split())[:160]
        raise DistributedError(
            f"rank {run.rank} of {run.world_size}: lost its peers {where()} ({type(exc).__name__}: {first})",
            hint=f"another rank failed or was killed (see its error above); a peer that stalls fails after "
            f"{TIMEOUT_ENV} seconds. Fix it and resume with the same command plus --continue",
        ) from None


# -- batch dice -------------------------------------------------------------------------------------
_LOCAL_ONLY = False  # True while a pass must stay in this process (the DDP gradient check's reference)


def sum_over_ranks(*tensors: Any) -> tuple[Any, ...]:
    """The element-wise sums of equally shaped ``tensors`` over all ranks, differentiable.

    Batch dice pools intersection and sizes over the batch; with the batch split over ranks,
    each rank must pool over the *global* batch or its loss (and gradient) differs from the
    single-process one. The autograd all-reduce sends each rank's gradient of the pooled sums
    back to every contributor; every rank computes the same global loss, so after DDP's
    gradient averaging the step equals the single-process step (nnU-Net all-gathers for the
    same reason). A no-op in a single process.
    """
    if not _CURRENT.active or _LOCAL_ONLY:
        return tensors
    import torch

    summed = _differentiable_sum().apply(torch.stack(tensors))
    return tuple(summed.unbind(0))


_SUM_FUNCTION: Any = None


def _differentiable_sum() -> Any:
    """An autograd function: all-reduce (sum) forward, all-reduce (sum) of the gradient backward."""
    global _SUM_FUNCTION
    if _SUM_FUNCTION is None:
        import torch
        import torch.distributed as dist

        class SumOverRanks(torch.autograd.Function):
            @staticmethod
            def forward(ctx: Any, tensor: Any) -> Any:
                out = tensor.clone()
                dist.all_reduce(out, op=dist.ReduceOp.SUM)
                return out

            @staticmethod
            def backward(ctx: Any, grad: Any) -> Any:
                grad = grad.clone()
                dist.all_reduce(grad, op=dist.ReduceOp.SUM)
                return grad

        _SUM_FUNCTION = SumOverRanks
    return _SUM_FUNCTION


# -- the training loop's side ---------------------------------------------------------------------
def _maybe_fault(run: DistributedRun, iteration: int) -> None:
    """The failure-injection hook the tests use (``SEGFORGE_FAULT_KILL_RANK_AT=RANK:ITERATION``)."""
    spec = os.environ.get(FAULT_ENV)
    if spec and spec == f"{run.rank}:{iteration}":
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class ScheduleAgreement:
    """What the ranks last agreed on, kept by the loop for one run: the total iterations (``None``
    before the first agreement, when rank 0's schedule is broadcast whatever happened)."""

    total: int | None = None


def sync_iteration(trainer: Trainer, stop: Any, agreement: ScheduleAgreement) -> None:
    """After every iteration: all ranks agree on a stop signal and on rank 0's schedule.

    One all-reduce (max) of ``[signal, rank 0's total, schedule changed]``; only when a rank's
    budget resized its schedule is rank 0's schedule state broadcast as well. Without this
    a SIGTERM reaching one rank first, or a budget ending rank 0's schedule, would leave the
    other ranks waiting in the next step's gradient all-reduce.
    """
    run: DistributedRun = getattr(trainer, "dist", _CURRENT)
    if not run.active:
        return
    import torch
    import torch.distributed as dist

    _maybe_fault(run, trainer.state.iteration)
    total = int(trainer.total_iterations)
    synced = agreement.total
    changed = int(synced is not None and synced != total)  # any rank's budget touched its schedule
    mine = [int(stop.signum or 0), total if run.is_main else -1, changed]
    agreed = torch.tensor(mine, dtype=torch.int64, device=run.comm_device)
    dist.all_reduce(agreed, op=dist.ReduceOp.MAX)
    signum, total, changed = (int(v) for v in agreed.cpu().tolist())
    if signum and not stop.requested:
        stop.signum = signum
    if changed or synced is None:
        schedule = run.broadcast(trainer.schedule.state_dict())
        if not run.is_main:
            trainer.load_schedule(schedule)  # rank 0's, already retargeted to its total
    if total != trainer.total_iterations:
        trainer.resize(total, retarget=False)
    agreement.total = total


def before_training(trainer: Trainer) -> ScheduleAgreement:
    """The budget's pre-training choices, made on every rank, then rank 0's precision and schedule kept.

    Under torchrun the budget probes nothing (one precision and thread candidate, see
    :meth:`.budget.BudgetController.make_probe`), and its steps are the trainer's own
    ``train_step`` run by the loop, so no rank runs a pass outside DDP here. Returns the
    ranks' agreement for :func:`sync_iteration` to keep up to date.
    """
    agreement = ScheduleAgreement()
    if trainer.budget is None:
        return agreement
    run: DistributedRun = getattr(trainer, "dist", _CURRENT)
    trainer.budget.before_training(trainer)
    if run.active:
        trainer.set_precision(run.broadcast(trainer.precision.name))
        sync_iteration(trainer, _NoStop(), agreement)
    return agreement


class _NoStop:
    signum: int | None = None
    requested = False


def describe(run: DistributedRun, global_batch: int, oversample: float) -> str:
    """The log line that says how the job is laid out."""
    parts = [split_batch(global_batch, oversample, run.world_size, r) for r in range(run.world_size)]
    sizes = ", ".join(str(b) for b, _ in parts)
    fractions = ", ".join(f"{f:.2f}" for _, f in parts)
    timeout = timeout_s("cuda" if run.backend == "nccl" else "cpu")
    return (
        f"distributed: {run.world_size} processes ({run.backend}), global batch {global_batch} split [{sizes}], "
        f"foreground oversampling per rank [{fractions}], collective timeout {timeout:.0f} s"
    )
