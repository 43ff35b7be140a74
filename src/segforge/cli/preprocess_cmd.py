"""``segforge preprocess --task N``: preprocess a raw dataset with existing plans (nnUNet_preprocess)."""

from __future__ import annotations

import os
from typing import Annotated, Optional

import typer

from segforge.cli import render


def default_num_workers() -> int:
    """One worker per core, at most 8 (more rarely helps: reading and writing files dominate)."""
    return max(1, min(8, os.cpu_count() or 1))


def preprocess_command(
    task: Annotated[str, typer.Option("--task", "-t", help="Task number (4), id (004) or folder name (Task004_X).")],
    configs: Annotated[
        Optional[list[str]],
        typer.Option(
            "--configs",
            "-c",
            help="Configurations to preprocess (repeatable or comma-separated; default: all in the plans).",
        ),
    ] = None,
    num_processes: Annotated[
        Optional[int],
        typer.Option("-np", "--num-processes", help="Cases preprocessed in parallel (default: cores, max 8)."),
    ] = None,
    plans_name: Annotated[
        str, typer.Option("--plans", help="Plans name: <preprocessed>/<task>/NAME.json.")
    ] = "segforgePlans",
    part_id: Annotated[
        int, typer.Option("--part-id", help="This job's shard of the cases (0..num-parts-1); see --num-parts.")
    ] = 0,
    num_parts: Annotated[
        int, typer.Option("--num-parts", help="Split the cases into this many shards for parallel jobs.")
    ] = 1,
) -> None:
    """Resample, normalize and store every training case as the plans say; re-running skips finished cases.

    Output: <preprocessed>/<task>/<data_identifier>/CASE.npy, CASE_seg.npy, CASE_locs.npy and CASE.json.
    Cases made with other plans (or from changed raw files) are redone.
    """
    from segforge.config.jsonio import load_model
    from segforge.config.plans import Plans
    from segforge.errors import ConfigError, UsageError
    from segforge.io.layouts import open_raw_dataset, resolve_task
    from segforge.preprocessing.dataset_runner import plans_file, preprocess_dataset
    from segforge.preprocessing.shards import check_shard
    from segforge.settings import get_folders

    check_shard(part_id, num_parts)
    workers = default_num_workers() if num_processes is None else num_processes
    if workers < 1:
        raise UsageError(f"-np must be at least 1, got {workers}", hint="pass -np 1 to preprocess in one process")
    raw = open_raw_dataset(resolve_task(task))
    root = get_folders().preprocessed.path
    path = plans_file(root, raw.name, plans_name)
    if not path.is_file():
        raise ConfigError(
            f"no plans '{plans_name}' for {raw.name}: {path} does not exist",
            hint=f"run `segforge plan --task {task}` first (or `segforge plan-and-preprocess --task {task}`)",
        )
    plans = load_model(path, Plans, hint="re-create the plans with `segforge plan --overwrite-plans`")
    names = [n.strip() for entry in configs or [] for n in entry.split(",") if n.strip()]
    for name in names:
        plans.configuration(name)  # unknown names: one-line error listing the available ones
    summary = preprocess_dataset(raw, plans, names or None, root, workers, part_id=part_id, num_parts=num_parts)
    rows = [
        (ident, ", ".join(info.configurations), info.done, info.skipped, str(info.folder))
        for ident, info in summary.identifiers.items()
    ]
    render.show(render.table(("data identifier", "configurations", "done", "skipped", "folder"), rows))
    render.message(f"preprocessed {summary.done} and skipped {summary.skipped} case(s) in {summary.seconds:.1f} s")


def register(app: typer.Typer) -> None:
    app.command("preprocess")(preprocess_command)
