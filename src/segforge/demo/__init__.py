"""``segforge demo``: the whole pipeline on a small real dataset shipped inside the package.

The data (``data/Task04_Hippocampus_demo``) is a 48-case subset of the Medical Segmentation
Decathlon's hippocampus task (CC BY-SA 4.0, attribution in its README.md and LICENSE). The
pipeline lives in :mod:`segforge.demo.pipeline`; this module only says where the data is and
imports nothing heavy.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from segforge.errors import ConfigError

DEMO_DATASET = "Task04_Hippocampus_demo"
#: the files every copy of the demo data must have beside the cases
DEMO_NOTICES = ("LICENSE", "README.md", "dataset.json")


def demo_data_path() -> Path:
    """The embedded MSD folder (imagesTr, labelsTr, imagesTs, labelsTs, dataset.json, LICENSE, README.md)."""
    root = resources.files("segforge.demo") / "data" / DEMO_DATASET
    path = Path(str(root))
    if not (path / "dataset.json").is_file():
        raise ConfigError(
            f"the demo data is missing from this installation ({path})",
            hint="reinstall segforge from a wheel or a source checkout that includes segforge/demo/data",
        )
    return path


__all__ = ["DEMO_DATASET", "DEMO_NOTICES", "demo_data_path"]
