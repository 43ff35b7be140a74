"""Options and output shared by the commands that write a model package (export-model, import-nnunet).

One definition keeps the model-card options and the package report identical whichever way a
package is made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from segforge.cli import render

OutputOption = Annotated[Path, typer.Option("-o", "--output", help="The package file to write (FILE.zip).")]
LicenceOption = Annotated[
    Optional[str], typer.Option("--licence", "--license", help="Licence of the weights, e.g. CC-BY-4.0.")
]
AuthorOption = Annotated[Optional[list[str]], typer.Option("--author", help="Author for the model card (repeat).")]
DescriptionOption = Annotated[Optional[str], typer.Option("--description", help="One-paragraph description.")]


def check_zip_output(output: Path) -> None:
    """A package is a ``.zip``: anything else is refused before any work is done."""
    from segforge.errors import UsageError

    if output.suffix != ".zip":
        raise UsageError(f"{output}: a model package is a .zip file", hint="pass -o NAME.zip")


def show_package(output: Path, manifest: Any) -> None:
    """The written package's size and member count, on stdout."""
    render.show(f"{output} ({output.stat().st_size / 1e6:.1f} MB, {len(manifest.files) + 1} files)")
