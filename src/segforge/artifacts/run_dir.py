"""Where a training run lives and what its ``manifest.json`` records.

Layout (nnU-Net's, with the network named because it is a component of its own)::

    <results>/<dataset>/<configuration>/<trainer>__<network>__<plans_name>/fold_<N|all>/
        checkpoint_{latest,best,final}.pt  manifest.json  training_log.txt  progress.png

The manifest says how the run was made: segforge and every plugin's version, the
components used (with their versions and origins), a digest of the plans, the command
line, the seed, the device and precision, and, for ``--time-budget`` runs, every decision
the budget made. It is rewritten (atomically) at the start, after budget sizing and at the
end, so it is also the place to look for the run's status.
"""

from __future__ import annotations

import hashlib
import math
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from segforge._version import __version__
from segforge.atomic import atomic_write_json

MANIFEST = "manifest.json"
TRAINING_LOG = "training_log.txt"
PROGRESS_PNG = "progress.png"


def fold_folder_name(fold: int | str) -> str:
    return f"fold_{fold}"


def run_folder(
    results_root: Path, dataset: str, configuration: str, trainer: str, network: str, plans_name: str
) -> Path:
    """``<results>/<dataset>/<configuration>/<trainer>__<network>__<plans_name>``."""
    return Path(results_root) / dataset / configuration / f"{trainer}__{network}__{plans_name}"


def parse_run_folder_name(name: str) -> tuple[str, str, str] | None:
    """``(trainer, network, plans)`` of a :func:`run_folder` name; None for other names.

    The plans name may itself hold ``__`` (``segforgePlans__swin_unet``); trainer and network
    names cannot (registry names), so the first two separators split the name.
    """
    parts = name.split("__", 2)
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 and all(parts) else None


def plans_digest(plans_json: str) -> str:
    """sha256 of the plans' canonical JSON (the run's plans can be matched to a plans file)."""
    return hashlib.sha256(plans_json.encode("utf-8")).hexdigest()


def plugin_versions() -> list[dict[str, Any]]:
    """Every loaded plugin with its distribution, version and status (from the plugin manager)."""
    from segforge.plugins import get_manager

    return [
        {"name": p.name, "dist": p.dist, "version": p.version, "builtin": p.builtin, "status": p.status}
        for p in get_manager().plugins
    ]


def environment() -> dict[str, Any]:
    import numpy
    import torch

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "cuda": torch.version.cuda,
    }


def json_safe(value: Any) -> Any:
    """``value`` with NaN/inf replaced by None and tuples by lists (manifest JSON allows neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_manifest(folder: Path, manifest: dict[str, Any]) -> Path:
    """Write ``manifest.json`` atomically, stamping segforge's version and the time."""
    manifest = {
        "segforge_version": __version__,
        "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **manifest,
    }
    path = Path(folder) / MANIFEST
    atomic_write_json(path, json_safe(manifest))
    return path


def command_line() -> list[str]:
    """The command as typed (``segforge train ...``), for the manifest."""
    argv = list(sys.argv)
    if argv:
        argv[0] = "segforge" if Path(argv[0]).name in ("segforge", "__main__.py") else argv[0]
    return argv
