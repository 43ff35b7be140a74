"""nnU-Net interop tests: a private model cache and the real input cases of the fixture (segforge_nnunet_fixture)."""

from __future__ import annotations

from pathlib import Path

import pytest
from segforge_nnunet_fixture import REFERENCE_CASES


@pytest.fixture(autouse=True)
def _private_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Converted nnU-Net models go to the test's folder, never the user's ~/.cache."""
    cache = tmp_path / "segforge-cache"
    monkeypatch.setenv("SEGFORGE_CACHE", str(cache))
    return cache


@pytest.fixture
def reference_inputs(hippocampus_msd: Path, tmp_path: Path) -> Path:
    """The held-out cases as ``CASE_0000.nii.gz`` (links into the shared data)."""
    folder = tmp_path / "images"
    folder.mkdir()
    for case in REFERENCE_CASES:
        (folder / f"{case}_0000.nii.gz").symlink_to(hippocampus_msd / "imagesTr" / f"{case}.nii.gz")
    return folder
