"""segforge's own image IO, registered like any plugin's."""

from __future__ import annotations

from segforge.hookspecs import hookimpl
from segforge.io.image_io import SimpleITKIO


@hookimpl
def segforge_register_image_io(registry) -> None:  # noqa: ANN001 - RegistrarView, kept import-free
    registry.add(SimpleITKIO())
