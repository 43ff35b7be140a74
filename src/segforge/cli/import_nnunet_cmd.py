"""``segforge import-nnunet``: an nnU-Net v2 model folder as a segforge model package (see docs/nnunet-models.md).

The folder is the one ``nnUNetv2_predict_from_modelfolder -m`` takes (plans.json, dataset.json,
fold_N/checkpoint_*.pth). It is converted with :func:`segforge.interop.nnunet.to_model_directory`
into a temporary folder (checkpoints read weights-only, nothing executed) and written with the same
package writer as ``segforge export-model``, so the zip installs and predicts like any other package.
``segforge predict -m NNUNET_FOLDER`` predicts from the folder directly without this step.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
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


def import_nnunet_command(
    ctx: typer.Context,
    model_folder: Annotated[Path, typer.Argument(help="nnU-Net v2 model folder (plans.json, dataset.json, fold_N/).")],
    output: OutputOption,
    folds: Annotated[Optional[list[str]], typer.Option("--folds", "-f", help=FOLDS_HELP)] = None,
    checkpoint: Annotated[
        str, typer.Option("--checkpoint", "-chk", help="final, best or latest (checkpoint_final.pth...).")
    ] = "final",
    licence: LicenceOption = None,
    author: AuthorOption = None,
    description: DescriptionOption = None,
) -> None:
    """Turn an nnU-Net v2 model folder into a segforge model package (.zip)."""
    from segforge.cli.predict_cmd import parse_folds
    from segforge.errors import UsageError
    from segforge.interop.nnunet import to_model_directory
    from segforge.interop.nnunet.model_directory import nnunet_checkpoint_key
    from segforge.packaging.model_source import is_nnunet_model_folder
    from segforge.packaging.package_export import export_package
    from segforge.plugins import get_registries

    check_zip_output(output)
    if not is_nnunet_model_folder(model_folder):
        raise UsageError(
            f"{model_folder} is not an nnU-Net v2 model folder (plans.json, dataset.json, fold_N/checkpoint_*.pth)",
            hint="pass the folder nnU-Net trained into, e.g. "
            "nnUNet_results/Dataset004_Hippocampus/nnUNetTrainer__nnUNetPlans__3d_fullres",
        )
    registries = get_registries()
    fold_names = parse_folds(folds, list(ctx.args))
    checkpoint = nnunet_checkpoint_key(checkpoint)  # nnU-Net's checkpoint_final.pth spelling -> final
    with tempfile.TemporaryDirectory(prefix="segforge-nnunet-") as tmp:
        run_dir = to_model_directory(model_folder, Path(tmp), folds=fold_names, checkpoint=checkpoint)
        manifest = export_package(
            run_dir,
            output,
            folds=fold_names,
            checkpoint=checkpoint,
            registries=registries,
            licence=licence,
            authors=author or [],
            description=description,
        )
    render.message(
        f"{model_folder} -> {manifest.model_dir}: fold(s) {', '.join(manifest.folds)}, "
        f"checkpoint {manifest.checkpoint}, network {manifest.network}"
    )
    show_package(output, manifest)


def register(app: typer.Typer) -> None:
    app.command("import-nnunet", context_settings={"allow_extra_args": True})(import_nnunet_command)
