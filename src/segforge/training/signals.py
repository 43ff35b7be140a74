"""SIGINT/SIGTERM during training: finish the current iteration, save, exit non-zero.

Saving inside a signal handler could write a checkpoint between an optimizer step and the
counter update; instead the handler only sets a flag that the loop checks after every
iteration. The loop then saves ``checkpoint_latest.pt`` and raises :class:`TrainingInterrupted`
(exit 130 for SIGINT, 143 for SIGTERM, as shells report them). A second Ctrl-C while the
first is being handled aborts at once (KeyboardInterrupt), for a user who does not want to
wait for the save.

SIGUSR1 means something else: *finish now* (:func:`finish_on_signal`). The run is not paused
but ended properly: :mod:`.stop_request` shortens the schedule to a short annealing tail (the
LR decays to 0 over a few iterations), then training ends as usual with
``checkpoint_final.pt``. ``segforge stop`` asks the same through a file in the fold folder;
the signal suits schedulers that warn a job before its time is up (SLURM ``--signal=USR1@120``).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from segforge.errors import SegforgeError


class TrainingInterrupted(SegforgeError):
    """Training stopped on a signal after saving ``checkpoint_latest.pt``."""

    def __init__(self, message: str, hint: str | None = None, signum: int = signal.SIGINT) -> None:
        super().__init__(message, hint)
        self.exit_code = 128 + int(signum)


@dataclass
class StopRequest:
    """Set by the handlers; the training loop polls :attr:`requested`."""

    signum: int | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""


@contextlib.contextmanager
def stop_on_signals(signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[StopRequest]:
    """Install flag-setting handlers for ``signals`` (main thread only) and restore the old ones after."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request  # handlers can only be installed from the main thread
        return

    def handler(signum: int, _frame: object) -> None:
        if request.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: the user does not want to wait
        request.signum = signum

    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield request
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


#: the signal that asks a training to finish now (with an annealing tail), not to pause (None on Windows,
#: which has no SIGUSR1: there `segforge stop` is the way)
FINISH_SIGNAL: int | None = getattr(signal, "SIGUSR1", None)


@dataclass
class FinishRequest:
    """Set by the SIGUSR1 handler; :mod:`.stop_request` polls and clears it once per iteration."""

    received: bool = False


@contextlib.contextmanager
def finish_on_signal(request: FinishRequest, signum: int | None = FINISH_SIGNAL) -> Iterator[FinishRequest]:
    """While training, ``signum`` only sets ``request.received`` (its default action would kill the process)."""
    if signum is None or threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handler(_signum: int, _frame: object) -> None:
        request.received = True

    previous = signal.signal(signum, handler)
    try:
        yield request
    finally:
        signal.signal(signum, previous)
