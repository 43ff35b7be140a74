"""Is the installed plugin the one a model was trained with? (major versions must agree).

A checkpoint records the distribution and version that provided its network
(``origin.dist`` / ``origin.version``, see :meth:`segforge.training.trainer.Trainer.network_spec`).
Plugins follow semantic versioning: a new major version may change the network's layers or
params, so its weights would not load, or worse, load into a different computation. A
differing major version is therefore a one-line error that names the version to install;
minor and patch releases are trusted to keep the network the same.
"""

from __future__ import annotations

import re

from segforge.errors import ConfigError
from segforge.registry import Origin

_MAJOR_RE = re.compile(r"^\s*v?(\d+)")


def major_version(version: str | None) -> int | None:
    """The leading number of ``1.2.3`` / ``v2.0`` / ``0.1.0.dev1``; None when there is none."""
    match = _MAJOR_RE.match(version or "")
    return int(match.group(1)) if match else None


def check_major_version(network: str, dist: str, trained_version: str, installed: Origin) -> None:
    """Raise when ``installed`` is ``dist`` at another major version than ``trained_version``.

    A network now provided by another distribution (or one without version metadata) is not
    judged: only a like-for-like comparison says something.
    """
    if installed.dist != dist:
        return
    trained, have = major_version(trained_version), major_version(installed.version)
    if trained is None or have is None or trained == have:
        return
    raise ConfigError(
        f"the model was trained with network '{network}' from {dist} {trained_version}, but {dist} "
        f"{installed.version} is installed (another major version): install {dist}=={trained_version}",
        hint=f"pip install '{dist}>={trained}.0,<{trained + 1}' (or {dist}=={trained_version}), then predict again",
    )
