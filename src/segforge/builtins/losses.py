"""Builtin plugin ``builtin.losses``: registers ``dc_ce``, ``dc_bce``, ``dice``, ``ce`` and ``deep_supervision``.

The same hook a third-party loss plugin implements; torch is imported only when a loss is built.
"""

from __future__ import annotations

from segforge.hookspecs import hookimpl
from segforge.losses.components import (
    CELossComponent,
    DeepSupervisionComponent,
    DiceBCELossComponent,
    DiceCELossComponent,
    DiceLossComponent,
)


@hookimpl
def segforge_register_losses(registry) -> None:
    registry.add(DiceCELossComponent())
    registry.add(DiceBCELossComponent())
    registry.add(DiceLossComponent())
    registry.add(CELossComponent())
    registry.add(DeepSupervisionComponent())
