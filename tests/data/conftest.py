"""Fixtures for the data-pipeline tests: a folder of synthetic preprocessed cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from segforge_data_cases import blob_case, write_synthetic_case

SHAPES = [(20, 24, 18), (12, 30, 16), (25, 25, 25), (9, 14, 11), (30, 20, 22), (16, 16, 16), (18, 26, 20), (22, 12, 30)]


@pytest.fixture
def synthetic_folder(tmp_path: Path) -> Path:
    """Eight 3D cases of varying shape (some smaller than the test patches) in one folder."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "Task099_Test" / "test_3d"
    for i, shape in enumerate(SHAPES):
        data, seg = blob_case(shape, rng)
        write_synthetic_case(folder, f"case_{i:03d}", data, seg)
    return folder
