"""``segforge convert-msd``: a Medical Segmentation Decathlon folder -> a raw TaskNNN_Name folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def convert_msd_command(
    src: Annotated[Path, typer.Argument(help="The unpacked MSD folder TaskXX_Name (imagesTr, labelsTr, ...).")],
    task_id: Annotated[
        Optional[int], typer.Option("--task-id", help="Task number of the output (default: the number in SRC's name).")
    ] = None,
    num_processes: Annotated[int, typer.Option("-np", "--num-processes", help="Cases converted in parallel.")] = 2,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing, different output.")] = False,
) -> None:
    """Convert an MSD task into the raw folder (SEGFORGE_RAW) as TaskNNN_Name, like nnUNet_convert_decathlon_task.

    Images become one file per channel (CASE_0000.nii.gz, ...), labels are copied and dataset.json
    is rewritten. Re-running skips what is already complete.
    """
    from segforge.errors import UsageError
    from segforge.io.convert_msd import convert_msd

    if num_processes < 1:
        raise UsageError(f"-np must be at least 1, got {num_processes}", hint="pass -np 1 to convert in one process")
    summary = convert_msd(src, task_id=task_id, num_processes=num_processes, overwrite=overwrite)
    typer.echo(summary.line())


def register(app: typer.Typer) -> None:
    app.command("convert-msd")(convert_msd_command)
