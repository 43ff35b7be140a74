"""Finish a running training now: a short annealing tail, then the usual end with ``checkpoint_final.pt``.

Ctrl-C/SIGTERM *pause* a run (``checkpoint_latest.pt``, resume with ``--continue``); a user who
must stop early wants a *finished* model instead. Cutting training off mid-schedule would leave
the LR high - the weights of a poly schedule stopped halfway are much worse than the same
number of iterations with a schedule that ended. So a stop request re-targets the schedule:
the LR decays from its current value to 0 over :data:`DEFAULT_TAIL_ITERATIONS` more
iterations (or fewer when the schedule ends sooner anyway), then the loop ends as it always
does: final validation batches, ``checkpoint_final.pt``, progress plot, manifest and, unless the
request skips it, the end-of-training validation.

How a request reaches the process:

- ``segforge stop RUN`` writes :data:`STOP_FILE` into the fold folder. The loop looks for it
  after every iteration, so it works from another shell, another machine sharing the
  filesystem, and under torchrun (rank 0 reads it; the re-targeted schedule reaches every rank
  through the per-iteration schedule sync, so all ranks run the same tail and end together).
- SIGUSR1 to the training process (:func:`segforge.training.signals.finish_on_signal`). The
  pid is in :data:`RUNNING_FILE`; a rank other than 0 that gets the signal writes the stop file
  for rank 0 to read.

:data:`RUNNING_FILE` (pid, host, start time) exists while a training runs in the fold folder:
``segforge stop`` checks it to refuse folders where nothing runs. A stop file older than the
session (left by a killed run) is removed when training starts. The request and where it took
effect are recorded in the manifest and checkpoints (``stop``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from segforge.atomic import atomic_write_json
from segforge.training.signals import FinishRequest, finish_on_signal

STOP_FILE = "stop_request.json"
RUNNING_FILE = "training_process.json"
#: iterations over which the LR decays to 0 after a stop request
DEFAULT_TAIL_ITERATIONS = 10


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


# -- the files ----------------------------------------------------------------------------------
def write_stop_request(fold_folder: Path, *, tail: int | None = None, skip_validation: bool = False,
                       by: str = "segforge stop") -> Path:  # fmt: skip
    """Ask the training in ``fold_folder`` to finish (atomic: the loop never reads half a request)."""
    path = Path(fold_folder) / STOP_FILE
    request = {"by": by, "requested": _now(), "tail_iterations": tail, "skip_validation": skip_validation}
    atomic_write_json(path, request)
    return path


def read_running(fold_folder: Path) -> dict[str, Any] | None:
    """The running training's record (pid, host, started), None when no training runs there."""
    return _read_json(Path(fold_folder) / RUNNING_FILE)


def process_alive(record: dict[str, Any]) -> bool | None:
    """Whether the recorded process still runs; None when it runs on another host (cannot tell)."""
    if record.get("host") != socket.gethostname() or os.name == "nt":  # Windows' os.kill would end the process
        return None
    try:
        os.kill(int(record["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process with that pid exists
        return True
    except (KeyError, TypeError, ValueError):
        return False
    return True


@contextlib.contextmanager
def running_marker(trainer: Any) -> Iterator[None]:
    """While training (and its end-of-training predictions) run: :data:`RUNNING_FILE` in the fold folder.

    Rank 0 only. A stop file from before this session is removed first: it asked a process that
    is gone. On every rank SIGUSR1 means "finish now" for the duration.
    """
    folder = trainer.context.fold_folder
    main = trainer.dist.is_main
    if main:
        stale = folder / STOP_FILE
        if stale.exists():
            stale.unlink()
            trainer.log.line(f"removed {STOP_FILE} left by an earlier session (it asked a process that has ended)")
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": _now()}
        atomic_write_json(folder / RUNNING_FILE, {**record, "world_size": trainer.dist.world_size})
    try:
        with finish_on_signal(trainer.stop_tail.signal):
            yield
    finally:
        if main:
            for name in (RUNNING_FILE, STOP_FILE):  # a request that came too late to act on goes too
                with contextlib.suppress(FileNotFoundError):
                    (folder / name).unlink()


# -- the tail -----------------------------------------------------------------------------------
class StopTail:
    """Turns a stop request into a shortened schedule and keeps it shortened until the end.

    ``record`` (plain data, in the manifest and checkpoints) is None until a request arrives.
    """

    def __init__(self) -> None:
        self.signal = FinishRequest()
        self.record: dict[str, Any] | None = None
        #: the schedule as the tail set it (restored when something lengthens the run again)
        self.tail_schedule: dict[str, Any] | None = None

    @property
    def skip_validation(self) -> bool:
        return bool(self.record and self.record.get("skip_validation"))

    def poll(self, trainer: Any) -> None:
        """After every iteration: start the tail on a new request, else keep the tail the schedule."""
        if self.record is not None:
            if trainer.dist.is_main:
                self._keep(trainer)
            return
        request = self._incoming(trainer)
        if request is not None:
            self.start(trainer, request)

    def _incoming(self, trainer: Any) -> dict[str, Any] | None:
        folder = trainer.context.fold_folder
        by_signal = self.signal.received
        self.signal.received = False
        if not trainer.dist.is_main:
            if by_signal:  # rank 0 decides for all ranks: hand the request over through the folder
                write_stop_request(folder, by=f"SIGUSR1 to rank {trainer.dist.rank}")
            return None
        if by_signal:
            return {"by": "SIGUSR1", "requested": _now(), "tail_iterations": None, "skip_validation": False}
        path = folder / STOP_FILE
        if not path.exists():
            return None
        request = _read_json(path)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        if request is None:
            trainer.log.warning(f"{path} is not a JSON object; stopping with the default tail")
            request = {"by": STOP_FILE, "requested": _now()}
        return request

    def start(self, trainer: Any, request: dict[str, Any]) -> None:
        """Re-target the schedule so the LR reaches 0 after the tail; record the request."""
        at = trainer.state.iteration
        planned = trainer.total_iterations
        wanted = request.get("tail_iterations")
        tail = DEFAULT_TAIL_ITERATIONS if wanted is None else max(1, int(wanted))
        final = min(planned, at + tail)
        self.record = {
            "by": str(request.get("by", "segforge stop")),
            "requested": request.get("requested"),
            "at_iteration": at,
            "planned_total_iterations": planned if _sized(trainer) else None,  # None: the budget had not sized it
            "tail_iterations": final - at,
            "final_iteration": final,
            "skip_validation": bool(request.get("skip_validation", False)),
        }
        if final < planned:
            _retarget(trainer, at, final)
        self.tail_schedule = _schedule_state(trainer)
        of = f" of {planned}" if _sized(trainer) else ""
        trainer.log.line(
            f"stop requested ({self.record['by']}) at iteration {at}{of}: the LR decays to 0 over "
            f"{final - at} more iteration(s), then checkpoint_final.pt is saved"
            + ("; end-of-training validation skipped" if self.skip_validation else "")
        )
        trainer.write_manifest("running")

    def _keep(self, trainer: Any) -> None:
        """Something re-sized the schedule after the stop (the budget's sizing or per-epoch re-plan): the tail
        wins, unless the new end comes sooner (the budget ran out of time).

        The tail's schedule is restored as it was, not re-targeted from here: a re-plan keeps the LR
        continuous where it re-anchors, so the iterations trained in between used the tail's LR, and a
        re-plan just before the tail's last iteration would leave no room to re-target to 0.
        """
        final = int(self.record["final_iteration"])
        total = int(trainer.total_iterations)
        if total < final:
            self.record["final_iteration"] = total
            self.tail_schedule = _schedule_state(trainer)
        elif total > final:
            if self.tail_schedule is not None and hasattr(trainer.schedule, "from_state"):
                trainer.load_schedule(self.tail_schedule)
                trainer.resize(final, retarget=False)
            else:
                _retarget(trainer, trainer.state.iteration, final)

    def state_dict(self) -> dict[str, Any] | None:
        return dict(self.record) if self.record is not None else None

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        self.record = dict(state) if state else None


def _schedule_state(trainer: Any) -> dict[str, Any] | None:
    state_dict = getattr(trainer.schedule, "state_dict", None)
    return state_dict() if state_dict is not None else None


def _sized(trainer: Any) -> bool:
    """False while a budget's schedule is still provisional (it measures the speed first)."""
    budget = getattr(trainer, "budget", None)
    return budget is None or bool(getattr(budget, "sized", True))


def _retarget(trainer: Any, iteration: int, final: int) -> None:
    """End the schedule at ``final``: the LR continues from its current value and decays per iteration.

    Through :meth:`~segforge.training.run_controls.RunControls.resize` (re-targets at the current
    iteration, which ``iteration`` is at both call sites; warns for a schedule without ``retarget``).
    """
    trainer.resize(final)
    schedule = trainer.schedule
    if hasattr(schedule, "retarget") and hasattr(schedule, "step_every"):  # an epoch-stepped poly LR
        schedule.step_every = 1  # would not move within a short tail


def attach(trainer: Any, resume: dict[str, Any] | None) -> StopTail:
    """Give ``trainer`` its stop tail (continuing a stopped run keeps the stop) and the checkpoint key."""
    tail = StopTail()
    if resume is not None:
        tail.load_state_dict(resume.get("stop"))
        if tail.record is not None:  # checkpoints are saved before a re-plan: theirs is the tail's schedule
            tail.tail_schedule = _schedule_state(trainer)
    payload = trainer.checkpoint_payload

    def payload_with_stop() -> dict[str, Any]:
        return {**payload(), "stop": tail.state_dict()}

    trainer.checkpoint_payload = payload_with_stop
    trainer.stop_tail = tail
    return tail


def poll(trainer: Any) -> None:
    """The loop's per-iteration call (a no-op for a trainer built without :func:`attach`)."""
    tail = getattr(trainer, "stop_tail", None)
    if tail is not None:
        tail.poll(trainer)


def stop_record(trainer: Any) -> dict[str, Any] | None:
    """The manifest's ``stop`` entry."""
    tail = getattr(trainer, "stop_tail", None)
    return tail.state_dict() if tail is not None else None
