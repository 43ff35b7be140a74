"""segforge's own image IO, registered like any plugin's."""

from __future__ import annotations

from segforge.hookspecs import hookimpl
from segforge.io.image_io import SimpleITKIO
from segforge.io.natural_image import NaturalImage2DIO


@hookimpl
def segforge_register_image_io(registry) -> None:  # noqa: ANN001 - RegistrarView, kept import-free
    registry.add(SimpleITKIO())
    registry.add(NaturalImage2DIO())
