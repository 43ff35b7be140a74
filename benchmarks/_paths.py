"""Where the benchmarks find data, the peer environment and room to work: flags first, then
environment variables, then defaults relative to this checkout (never a developer's folders).

- real data (``Task04_Hippocampus``, ...): ``SEGFORGE_TEST_DATA``, default ``<checkout>/../shared/data``
  (as the tests);
- Python of the peer venv (nnU-Net v2, MONAI): ``SEGFORGE_PEER_PYTHON``, default
  ``<checkout>/.nox/peers/bin/python``, which ``nox -s peers`` builds;
- nnU-Net's own raw/preprocessed/results base: ``NNUNET_REF``, default ``<tmp>/segforge_nnunet_ref``;
- scratch space of one benchmark: ``SEGFORGE_BENCH_WORK``, default ``<tmp>/segforge_bench/<benchmark>``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else default


def shared_data() -> Path:
    """The folder holding the real datasets (``../shared/data`` beside the checkout by default)."""
    return _env_path("SEGFORGE_TEST_DATA", REPO.parent / "shared" / "data")


def hippocampus_msd() -> Path:
    """MSD Task04_Hippocampus as MSD ships it."""
    return shared_data() / "Task04_Hippocampus"


def peer_python() -> Path:
    """The interpreter of the environment with nnU-Net v2 and MONAI that ``nox -s peers`` builds."""
    return _env_path("SEGFORGE_PEER_PYTHON", REPO / ".nox" / "peers" / "bin" / "python")


def nnunet_ref() -> Path:
    """nnU-Net's raw/preprocessed/results base used by the benchmarks that run nnU-Net itself."""
    return _env_path("NNUNET_REF", Path(tempfile.gettempdir()) / "segforge_nnunet_ref")


def work_dir(benchmark: str) -> Path:
    """Scratch folder of one benchmark."""
    return _env_path("SEGFORGE_BENCH_WORK", Path(tempfile.gettempdir()) / "segforge_bench") / benchmark
