"""Splitting a dataset's cases over independent preprocessing jobs (``--part-id K --num-parts M``).

The rule is prediction's (:func:`segforge.inference.predictor.shard`): sort the case ids and
give part ``K`` every ``M``-th one starting at ``K``. It depends on nothing but the ids, so
jobs on different machines agree without talking to each other, the parts are disjoint and
together cover every case, and no two parts ever write the same file (each case's files
belong to exactly one part).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from segforge.errors import UsageError


def check_shard(part_id: int, num_parts: int) -> None:
    """A one-line error for an impossible ``--part-id``/``--num-parts`` pair."""
    if num_parts < 1 or not 0 <= part_id < num_parts:
        raise UsageError(
            f"--part-id {part_id} / --num-parts {num_parts} is not a valid shard",
            hint="use 0 <= part-id < num-parts, e.g. --part-id 0 --num-parts 2 and --part-id 1 --num-parts 2",
        )


def shard_ids(case_ids: Sequence[str], part_id: int, num_parts: int) -> list[str]:
    """Every ``num_parts``-th of the sorted ids, starting at ``part_id``."""
    check_shard(part_id, num_parts)
    return sorted(case_ids)[part_id::num_parts]


def shard_dataset(raw: Any, part_id: int, num_parts: int) -> Any:
    """``raw`` (a :class:`segforge.io.layouts.RawDataset`) with only this part's training cases."""
    keep = set(shard_ids([c.case_id for c in raw.cases], part_id, num_parts))
    if num_parts == 1:
        return raw
    return dataclasses.replace(raw, cases=[c for c in raw.cases if c.case_id in keep])
