"""Builtin plugin ``builtin.callbacks``: registers ``csv_metrics`` (metrics.csv per fold).

The same hook a third-party callback plugin implements. A registered callback does nothing
until a run selects it with ``segforge train --callback NAME``.
"""

from __future__ import annotations

from segforge.hookspecs import hookimpl


@hookimpl
def segforge_register_callbacks(registry) -> None:
    from segforge.training.metrics_csv import CsvMetricsLogger

    registry.add(CsvMetricsLogger)
