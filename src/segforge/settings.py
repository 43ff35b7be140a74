"""Where segforge keeps raw data, preprocessed data and results.

Each folder comes from a segforge variable, then nnU-Net v1's variable (so its users can
point segforge at data they already have), then an embedded default under
``./segforge_data`` in the current directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: folder -> (segforge variable, nnU-Net v1 fallback variable, default sub-folder)
FOLDER_VARIABLES: dict[str, tuple[str, str, str]] = {
    "raw": ("SEGFORGE_RAW", "nnUNet_raw_data_base", "raw"),
    "preprocessed": ("SEGFORGE_PREPROCESSED", "nnUNet_preprocessed", "preprocessed"),
    "results": ("SEGFORGE_RESULTS", "RESULTS_FOLDER", "results"),
}
DEFAULT_BASE = "segforge_data"


@dataclass(frozen=True)
class Folder:
    path: Path
    source: str  # the variable it came from, or "default"


@dataclass(frozen=True)
class Folders:
    raw: Folder
    preprocessed: Folder
    results: Folder

    def as_dict(self) -> dict[str, dict[str, str]]:
        return {k: {"path": str(getattr(self, k).path), "source": getattr(self, k).source} for k in FOLDER_VARIABLES}


def _resolve(key: str, environ: dict[str, str], cwd: Path) -> Folder:
    ours, nnunet, sub = FOLDER_VARIABLES[key]
    for var in (ours, nnunet):
        value = environ.get(var, "").strip()
        if value:
            path = Path(value).expanduser()
            # nnU-Net v1 always keeps its Task folders in nnUNet_raw_data_base/nnUNet_raw_data (it
            # creates that folder); following it even before it exists keeps both tools in one place
            if var == "nnUNet_raw_data_base":
                path = path / "nnUNet_raw_data"
            return Folder(path if path.is_absolute() else cwd / path, var)
    return Folder(cwd / DEFAULT_BASE / sub, "default")


def get_folders(environ: dict[str, str] | None = None, cwd: Path | None = None) -> Folders:
    """The three folders, read from the environment now (not cached, so tests can change it)."""
    env = dict(os.environ if environ is None else environ)
    base = Path.cwd() if cwd is None else cwd
    return Folders(*(_resolve(k, env, base) for k in FOLDER_VARIABLES))


#: the user cache (unpacked model packages, converted nnU-Net models, exported ONNX networks, backend speeds)
CACHE_VARIABLE = "SEGFORGE_CACHE"


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """``cache_dir`` when given, else ``$SEGFORGE_CACHE``, else ``$XDG_CACHE_HOME/segforge`` (``~/.cache/segforge``)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    value = os.environ.get(CACHE_VARIABLE, "").strip()
    if value:
        return Path(value).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "segforge"
