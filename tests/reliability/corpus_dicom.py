"""Bad DICOM series folders given to ``segforge predict``: two series in one case folder, a missing slice,
and DICOM without the plugin that reads it.

Each kind copies the real TotalSegmentator CT series (``../shared/data``; skipped with a reason
without it) into ``dicom_in/<case>/`` inside the workspace and breaks the copy. Reading DICOM
is the ``segforge-dicom`` plugin's: the first two kinds need it installed (``nox -s plugins``
installs it; skipped otherwise), the last blocks it with ``-p no:dicom`` so it runs either way.
Listed in :data:`corpus_kinds.CORPUS` and in docs/reliability.md like every other kind.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from corpus import BadInput, Workspace

SERIES = (
    Path(os.environ.get("SEGFORGE_TEST_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
    / "TotalSegmentator_examples"
    / "example_ct_dicom"
)
DICOM_PREDICT = ("predict", "-i", "{root}/dicom_in", "-o", "{out}", "-m", "{fold}", "--no-tta", "--sequential",
                 "--device", "cpu")  # fmt: skip


def _case_folder(ws: Workspace, *, needs_plugin: bool) -> Path:
    if not SERIES.is_dir():
        pytest.skip(f"the TotalSegmentator DICOM example was not found at {SERIES} (set SEGFORGE_TEST_DATA)")
    if needs_plugin and not all(importlib.util.find_spec(m) for m in ("segforge_dicom", "pydicom")):
        pytest.skip("segforge-dicom (with pydicom) is not installed (nox -s plugins installs it)")
    folder = ws.root / "dicom_in" / "patient"
    shutil.copytree(SERIES, folder)
    return folder


def _two_series(ws: Workspace) -> None:
    """The series plus a renamed copy of it with another SeriesInstanceUID and description."""
    folder = _case_folder(ws, needs_plugin=True)
    import pydicom

    for path in sorted(SERIES.iterdir()):
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID, ds.SeriesDescription = "1.2.826.0.1.3680043.8.498.77", "CT copy"
        ds.save_as(folder / f"copy_{path.name}")


def _missing_slice(ws: Workspace) -> None:
    """The series without its 11th slice along z (the file names are not in slice order)."""
    folder = _case_folder(ws, needs_plugin=True)
    import pydicom

    files = sorted(folder.iterdir(), key=lambda p: float(pydicom.dcmread(p, stop_before_pixels=True)
                                                         .ImagePositionPatient[2]))  # fmt: skip
    files[10].unlink()


def _plain_copy(ws: Workspace) -> None:
    _case_folder(ws, needs_plugin=False)


def _kind(ident: str, description: str, setup: Callable[[Workspace], None], expect: str, *blocked: str) -> BadInput:
    args = tuple(a for name in blocked for a in ("-p", f"no:{name}")) + DICOM_PREDICT
    return BadInput(ident, "dicom", description, setup, args, expect)


DICOM = [
    _kind("dicom-two-series", "a case folder holding two DICOM series", _two_series,
          "dicom_in/patient holds 2 DICOM series: (no SeriesInstanceUID) 'CT Body 3.0' (20 CT slices)"),
    _kind("dicom-missing-slice", "a DICOM series with a middle slice missing", _missing_slice,
          "slice spacing is not uniform (4 mm between"),
    _kind("dicom-no-plugin", "a DICOM series folder, segforge-dicom not installed (blocked)", _plain_copy,
          "dicom_in/patient is a DICOM series folder, but no installed image IO reads DICOM", "dicom"),
]  # fmt: skip
