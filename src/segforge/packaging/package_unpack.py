"""Putting a verified model package where the predictor reads it: a cache copy or a results folder.

Both go through a temporary folder beside the target that is renamed into place once every
member is written and every checkpoint has loaded with ``weights_only=True``: an interrupted or
refused unpack leaves nothing half-written, and a finished folder is always complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from segforge.errors import UsageError
from segforge.packaging.package_verify import VerifiedPackage, check_checkpoints, extract_to, verify_package
from segforge.packaging.requirements import check_requirements


def open_checked(path: Path) -> VerifiedPackage:
    """Verify the archive, then the plugin requirements (before anything is unpacked or loaded)."""
    package = verify_package(path)
    check_requirements(package.manifest.requirements, f"model package {path.name}")
    return package


def _unpack_into(package: VerifiedPackage, parent: Path) -> Path:
    """Extract and check into a new temporary folder under ``parent``; removed again on any error."""
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=parent))
    try:
        extract_to(package, tmp)
        check_checkpoints(package, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


def unpack_package(path: Path, cache_models: Path) -> Path:
    """The model folder of the package at ``path``, unpacked once under ``cache_models/<sha256>``."""
    package = open_checked(Path(path))
    final = cache_models / package.sha256
    if not final.is_dir():
        tmp = _unpack_into(package, cache_models)
        try:
            os.replace(tmp, final)
        except OSError:  # another process unpacked the same package first: theirs is as good
            shutil.rmtree(tmp, ignore_errors=True)
            if not final.is_dir():
                raise
    return final / package.manifest.model_dir


def install_package(path: Path, results_root: Path, *, overwrite: bool = False) -> Path:
    """Unpack into ``<results>/<dataset>/<config>/<run>`` so ``predict --task`` finds it; returns that folder."""
    package = open_checked(Path(path))
    target = results_root / package.manifest.model_dir
    if target.exists() and not overwrite:
        raise UsageError(f"{target} already exists", hint="pass --overwrite to replace it with the package's model")
    tmp = _unpack_into(package, results_root)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            old = target.with_name(f".{target.name}.replaced")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp / package.manifest.model_dir, target)
        card = tmp / "model-card.json"
        if card.is_file():
            os.replace(card, target / "model-card.json")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
