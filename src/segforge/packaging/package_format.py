"""What a segforge model package (``segforge export-model``) holds, as data and as an allow-list.

A package is one zip laid out like a results folder, so installing it is unpacking it::

    segforge-package.json                    this manifest: what the package is, sha256 of every member
    model-card.json                          data, task, configuration, metrics, licence (people read it)
    <dataset>/<config>/<trainer>__<network>__<plans>/
        plans.json  dataset.json             the plans trained with; the dataset's description
        postprocessing.json                  if determined for the run
        inference_instructions.json          if find-best-config wrote them for the dataset
        fold_<N>/checkpoint_<which>.pt       weights + plans + network spec (torch zip, weights_only)
        fold_<N>/manifest.json               the fold's training manifest (provenance)

Only these names are accepted when reading a package: anything else is refused as unexpected,
so a package cannot smuggle a ``.py``, a pickle or a file outside the model folder. Every
member's sha256 is listed in the manifest; a mismatch, a missing or an unlisted member means
the archive was changed after export.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PACKAGE_MANIFEST = "segforge-package.json"
MODEL_CARD = "model-card.json"
PACKAGE_FORMAT = "segforge-model-package"
PACKAGE_FORMAT_VERSION = 1

#: files allowed beside the fold folders, inside the model folder
MODEL_FILES = ("plans.json", "dataset.json", "postprocessing.json", "inference_instructions.json")
_FOLD_MEMBER = re.compile(r"^fold_(\d+|all)/(checkpoint_(best|final|latest)\.pt|manifest\.json)$")
#: a model folder path: three plain name parts (no dots-only parts, no separators inside)
_MODEL_DIR = re.compile(r"^[A-Za-z0-9_.\-]+/[A-Za-z0-9_.\-]+/[A-Za-z0-9_.\-]+$")


class Requirement(BaseModel):
    """A plugin distribution the model needs at prediction time, and the releases that fit."""

    model_config = ConfigDict(extra="forbid")

    dist: str
    #: the version the model was trained (or exported) with
    version: str
    #: pip version specifier of the compatible releases (``>=0.1.0,<0.2``)
    specifier: str
    #: ``kind:name`` of the components it provides to this model (``network:tiny_unet``)
    components: list[str]

    def pip_line(self) -> str:
        return f"pip install '{self.dist}{self.specifier}'"


class PackageManifest(BaseModel):
    """``segforge-package.json``: identifies the package and lists every other member's sha256."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["segforge-model-package"] = PACKAGE_FORMAT
    format_version: int = PACKAGE_FORMAT_VERSION
    segforge_version: str
    created: str
    dataset: str
    configuration: str
    trainer: str
    network: str
    plans: str
    folds: list[str] = Field(min_length=1)
    checkpoint: str
    requirements: list[Requirement]
    #: member path -> sha256 hex digest (every member except this manifest)
    files: dict[str, str]

    @property
    def model_dir(self) -> str:
        """The model folder inside the package (and inside a results folder once installed)."""
        return f"{self.dataset}/{self.configuration}/{self.trainer}__{self.network}__{self.plans}"


def model_dir_is_plain(model_dir: str) -> bool:
    """``dataset/config/run`` with plain names only (no ``..``, no absolute path)."""
    return bool(_MODEL_DIR.match(model_dir)) and ".." not in model_dir.split("/")


def member_allowed(name: str, model_dir: str) -> bool:
    """Is ``name`` one of the members a package may hold (see the module docstring)?"""
    if name in (PACKAGE_MANIFEST, MODEL_CARD):
        return True
    prefix = model_dir + "/"
    if not name.startswith(prefix):
        return False
    rest = name[len(prefix) :]
    return rest in MODEL_FILES or bool(_FOLD_MEMBER.match(rest))
