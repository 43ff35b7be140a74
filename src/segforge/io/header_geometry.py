"""Image geometry from a file's header, through the image IO that will read the file.

Memory checks estimate a case's size before reading it. SimpleITK's header reader
(:func:`segforge.resources.header_geometry`) is right for the files SimpleITK reads, but for a
PNG or TIFF it derives a spacing from the DPI metadata that segforge's natural-image IO ignores
(a 1-dpi TIFF would look 25.4 mm per pixel and its resampled size 645 times too large). A
component that reads the geometry differently says so with a ``header_geometry(path)`` method.
"""

from __future__ import annotations

import os

from segforge.errors import SegforgeError
from segforge.resources import header_geometry


def header_geometry_for(path: str | os.PathLike[str]) -> tuple[tuple[int, ...], tuple[float, ...]] | None:
    """(shape, spacing) in array order from the header, as the image IO for the file's ending sees it."""
    from segforge.io.image_io import image_io_for

    try:
        own = getattr(image_io_for(path), "header_geometry", None)
    except SegforgeError:  # no reader for the ending: the reader proper reports that
        own = None
    return own(path) if own is not None else header_geometry(path)
