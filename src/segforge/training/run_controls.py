"""The trainer methods through which the time budget, torchrun and ``--continue`` change a run.

:class:`~segforge.training.trainer.DefaultTrainer` inherits them. The budget sizes the run
(:meth:`RunControls.resize`), its probe picks precision and threads (:meth:`set_precision`,
:meth:`set_threads`), torchrun ranks adopt rank 0's schedule (:meth:`load_schedule`) and the
end of training is :meth:`after_training`. None of them assigns a trainer's attributes from
outside, so a plugin trainer that overrides one of these sees every such change (see
:mod:`.protocols`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from segforge.training.device import PrecisionChoice, set_threads

if TYPE_CHECKING:  # pragma: no cover
    from segforge.training.protocols import Schedule


class RunControls:
    """Mixin of :class:`~segforge.training.trainer.DefaultTrainer` (uses its ``schedule``, ``state``,
    ``log``, ``device`` and ``params``)."""

    total_iterations: int
    schedule: Schedule
    state: Any
    log: Any
    device: Any
    params: Any
    precision: PrecisionChoice

    def resize(self, total: int, *, retarget: bool = True) -> None:
        """End training after ``total`` iterations; with ``retarget`` the schedule still reaches its end there.

        The time budget calls this when it sizes or re-sizes the run (``retarget=False`` for a hard
        stop, where the LR of iterations never run does not matter). A schedule without
        ``retarget`` keeps its curve: the run then ends at ``total`` with the LR as scheduled.
        """
        self.total_iterations = int(total)
        if not retarget:
            return
        if hasattr(self.schedule, "retarget"):
            self.schedule.retarget(self.state.iteration, self.total_iterations)
        elif not getattr(self, "_warned_no_retarget", False):
            self._warned_no_retarget = True
            self.log.warning(f"{type(self.schedule).__name__} has no retarget(): the LR follows its own total")

    def load_schedule(self, state: dict[str, Any]) -> None:
        """Adopt a stored schedule (a checkpoint's, or rank 0's under torchrun) of ``make_schedule``'s kind."""
        self.schedule = type(self.schedule).from_state(state)

    def set_precision(self, name: str) -> None:
        """Train at ``name`` (bf16/fp32/fp16) from the next step: the budget's probe and choice, rank 0's under DDP."""
        self.precision = PrecisionChoice(name, self.device.type)

    def set_threads(self, threads: int) -> None:
        """Use ``threads`` torch threads from the next step (recorded in the params, so checkpoints keep it)."""
        set_threads(threads)
        self.params = self.params.model_copy(update={"threads": threads})

    def after_training(self) -> None:
        """Rank 0, once training finished: next-stage predictions and held-out validation (:mod:`.after_training`)."""
        from segforge.training.after_training import end_of_training

        end_of_training(self)

    def complete_after_training(self) -> None:
        """``--continue`` of a finished run: what an interrupted :meth:`after_training` left undone."""
        from segforge.training.after_training import complete_end_of_training

        complete_end_of_training(self)
