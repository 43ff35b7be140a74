"""``segforge ensemble -i DIR1 DIR2 [...] -o OUT``: average probability folders (nnUNetv2_ensemble).

The inputs are folders written by ``segforge predict --save-probabilities`` (CASE.npz +
CASE.json per case, for the same cases); the output gets one segmentation per case, and with
``--save-probabilities`` the averaged probabilities too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segforge.cli import render
from segforge.cli.multi_value import multi_value_command


def ensemble_command(
    inputs: Annotated[
        list[Path], typer.Option("-i", "--input", help="Two or more probability folders (-i DIR1 DIR2 ...).")
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for the ensembled segmentations.")],
    save_probabilities: Annotated[
        bool, typer.Option("--save-probabilities", help="Also write the averaged CASE.npz + CASE.json.")
    ] = False,
    num_processes: Annotated[int, typer.Option("-np", "--num-processes", help="Cases processed in parallel.")] = 2,
    continue_: Annotated[bool, typer.Option("--continue", help="Skip cases whose output exists.")] = False,
    file_ending: Annotated[str, typer.Option("--file-ending", help="File ending of the segmentations.")] = ".nii.gz",
) -> None:
    """Average the probabilities of several predictions case by case and write the argmax segmentation."""
    from segforge.ensembling import ensemble_folders
    from segforge.errors import UsageError
    from segforge.io.image_io import image_io_for
    from segforge.plugins import get_registries

    registries = get_registries()
    endings = sorted({e for entry in registries.image_io for e in entry.component.file_endings})
    if file_ending not in endings:
        raise UsageError(f"--file-ending {file_ending} is not one of {', '.join(endings)}",
                         hint="use the dataset's file ending, e.g. --file-ending .nii.gz")  # fmt: skip
    image_io = image_io_for(file_ending, registries)  # the IO owning that ending (PNG: natural2d)
    result = ensemble_folders(inputs, output, save_probabilities=save_probabilities, num_processes=num_processes,
                              skip_existing=continue_, file_ending=file_ending, image_io=image_io,
                              show_progress=True)  # fmt: skip
    render.message(f"{len(result.written)} case(s) ensembled from {len(inputs)} folders, "
                   f"{len(result.skipped)} skipped (done) -> {output}")  # fmt: skip


def register(app: typer.Typer) -> None:
    app.command("ensemble", cls=multi_value_command("-i", "--input"))(ensemble_command)
