"""Builtin plugin ``builtin.trainers``: registers the ``default`` trainer (nnU-Net v2's recipe).

The trainer class itself is the component (its ``name``, ``version`` and ``Params`` are class
attributes); plugin trainers subclass it and register the same way.
"""

from __future__ import annotations

from segforge.hookspecs import hookimpl


@hookimpl
def segforge_register_trainers(registry) -> None:
    from segforge.training.trainer import DefaultTrainer

    registry.add(DefaultTrainer)
