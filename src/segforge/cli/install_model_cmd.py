"""``segforge install-model FILE``: a model package into the results folder (as nnU-Net installs a zip).

The package is verified (no unexpected, pickled or changed members) and its plugin requirements
checked before anything is written; afterwards ``segforge predict --task ...`` finds the model
like one trained here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segforge.cli import render


def install_model_command(
    package: Annotated[Path, typer.Argument(help="The model package (.zip) written by segforge export-model.")],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a model already installed there.")] = False,
) -> None:
    """Install a model package into the results folder, after checking it and its plugin requirements."""
    from segforge.errors import UsageError
    from segforge.packaging.package_unpack import install_package
    from segforge.settings import get_folders

    if not package.is_file():
        raise UsageError(f"model package {package} does not exist", hint="pass the .zip written by export-model")
    target = install_package(package, get_folders().results.path, overwrite=overwrite)
    render.show(f"installed {target}")


def register(app: typer.Typer) -> None:
    app.command("install-model")(install_model_command)
