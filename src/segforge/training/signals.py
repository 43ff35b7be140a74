"""SIGINT/SIGTERM during training: finish the current iteration, save, exit non-zero.

Saving inside a signal handler could write a checkpoint between an optimizer step and the
counter update; instead the handler only sets a flag that the loop checks after every
iteration. The loop then saves ``checkpoint_latest.pt`` and raises :class:`TrainingInterrupted`
(exit 130 for SIGINT, 143 for SIGTERM, as shells report them). A second Ctrl-C while the
first is being handled aborts at once (KeyboardInterrupt), for a user who does not want to
wait for the save.
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
