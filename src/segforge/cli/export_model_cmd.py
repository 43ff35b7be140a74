"""``segforge export-model``: a trained run as one model package zip (see docs/model-packages.md).

The run is picked with the options ``segforge predict`` uses (``--task/--config/--trainer/
--network/--plans``, ``--folds``, ``--checkpoint``), so what is exported is what ``predict``
with the same words would run.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from segforge.cli import render
from segforge.cli.package_options import (
    AuthorOption,
    DescriptionOption,
    LicenceOption,
    OutputOption,
    check_zip_output,
    show_package,
)
from segforge.cli.predict_cmd import FOLDS_HELP
from segforge.cli.run_options import NetworkOption, PlansOption, TrainerOption


def export_model_command(
    ctx: typer.Context,
    task: Annotated[str, typer.Option("--task", "-t", "-d", help="Task number or name.")],
    output: OutputOption,
    config: Annotated[str, typer.Option("--config", "-c", help="Configuration.")] = "3d_fullres",
    trainer: TrainerOption = None,
    network: NetworkOption = None,
    plans: PlansOption = None,
    folds: Annotated[Optional[list[str]], typer.Option("--folds", "-f", help=FOLDS_HELP)] = None,
    checkpoint: Annotated[str, typer.Option("--checkpoint", "-chk", help="best, final or latest.")] = "final",
    licence: LicenceOption = None,
    author: AuthorOption = None,
    description: DescriptionOption = None,
) -> None:
    """Write one zip holding what prediction needs: plans, checkpoints, postprocessing, plugins, model card."""
    from segforge.cli.predict_cmd import parse_folds
    from segforge.packaging.model_source import find_model_dir
    from segforge.packaging.package_export import export_package
    from segforge.plugins import get_registries

    check_zip_output(output)
    registries = get_registries()
    fold_names = parse_folds(folds, list(ctx.args))
    run_dir = find_model_dir(task, None, config, trainer, network, plans, registries)
    manifest = export_package(run_dir, output, folds=fold_names, checkpoint=checkpoint, registries=registries,
                              licence=licence, authors=author or [], description=description)  # fmt: skip
    needs = ", ".join(f"{r.dist}{r.specifier}" for r in manifest.requirements) or "no plugins"
    render.message(f"{manifest.model_dir}: fold(s) {', '.join(manifest.folds)}, checkpoint {manifest.checkpoint}; "
                   f"needs {needs}")  # fmt: skip
    show_package(output, manifest)


def register(app: typer.Typer) -> None:
    app.command("export-model", context_settings={"allow_extra_args": True})(export_model_command)
