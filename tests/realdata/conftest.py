"""The four datasets of ../shared/data as their sources ship them, and crops of them in the same layout.

Each fixture skips with a reason when the data is absent (set SEGFORGE_TEST_DATA). The crops keep
the shipped folder layout and file names, so the tests run the same documented commands
(docs/your-data.md) on smaller volumes; geometry (spacing, direction, origin of the crop) is kept.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: the same folder tests/conftest.py uses for the hippocampus data
SHARED_DATA = Path(os.environ.get("SEGFORGE_TEST_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))

BRATS = SHARED_DATA / "BraTS2015_sample"
DRIVE = SHARED_DATA / "DRIVE"
TOTALSEG = SHARED_DATA / "TotalSegmentator_examples"
PYRADIOMICS = SHARED_DATA / "pyradiomics_brain"


def _need(folder: Path, probe: str) -> Path:
    if not (folder / probe).exists():
        pytest.skip(f"real data not found at {folder / probe} (set SEGFORGE_TEST_DATA)")
    return folder


@pytest.fixture(scope="session")
def brats_root() -> Path:
    return _need(BRATS, "train/brats_2013_pat0005_1/OTMultiClass.nii.gz")


@pytest.fixture(scope="session")
def drive_root() -> Path:
    return _need(DRIVE, "training/1st_manual/21_manual1.gif")


@pytest.fixture(scope="session")
def totalseg_root() -> Path:
    return _need(TOTALSEG, "example_ct_sm.nii.gz")


@pytest.fixture(scope="session")
def pyradiomics_root() -> Path:
    return _need(PYRADIOMICS, "brain1_image.nrrd")
