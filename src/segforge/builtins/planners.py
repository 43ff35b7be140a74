"""Builtin plugin ``builtin.planners``: registers the ``default`` planner (nnU-Net v2's decisions).

It registers through the same hook a third-party planner plugin implements.
"""

from __future__ import annotations

from segforge.hookspecs import hookimpl
from segforge.planning.planner import DefaultPlanner


@hookimpl
def segforge_register_planners(registry) -> None:  # noqa: ANN001 - RegistrarView, kept import-free
    registry.add(DefaultPlanner())
