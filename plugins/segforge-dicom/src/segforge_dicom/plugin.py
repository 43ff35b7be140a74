"""The module named by the ``segforge`` entry point: the hooks segforge calls.

Nothing heavy is imported at module level, so listing plugins stays cheap: pydicom and
highdicom are imported when a series is read or a DICOM-SEG written.
"""

from __future__ import annotations

from typing import Any

from segforge import hookimpl
from segforge_dicom import __version__


@hookimpl
def segforge_register_image_io(registry: Any) -> None:
    from segforge_dicom.image_io import DicomSeriesIO

    registry.add(DicomSeriesIO())


@hookimpl
def segforge_add_commands(app: Any) -> None:
    from segforge_dicom.commands import app as dicom_app

    app.add_typer(dicom_app, name="dicom")


@hookimpl
def segforge_report_header() -> str:
    return f"segforge-dicom {__version__}: image IO dicom (series folders), commands `segforge dicom ...`"
