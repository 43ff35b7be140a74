"""Is the installed plugin the one a model was trained with? (semantic-versioning compatible releases).

A checkpoint records the distribution and version that provided its network
(``origin.dist`` / ``origin.version``, see :meth:`segforge.training.trainer.Trainer.network_spec`).
Plugins follow semantic versioning: a release that may break users may change the network's
layers or params, so its weights would not load, or worse, load into a different
computation. Which releases may break follows SemVer (and pip's ``~=``/Cargo's ``^``): from
1.0 on a new major version; before 1.0 a new minor version (``0.1`` -> ``0.2``), since 0.x
releases put their breaking changes there; ``0.0.z`` releases promise nothing. Another series
is a one-line error naming the version to install; releases within a series are trusted to
keep the network the same.
"""

from __future__ import annotations

import re

from segforge.errors import ConfigError
from segforge.registry import Origin

_RELEASE_RE = re.compile(r"^\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?")


def major_version(version: str | None) -> int | None:
    """The leading number of ``1.2.3`` / ``v2.0`` / ``0.1.0.dev1``; None when there is none."""
    series = compatible_series(version)
    return series[0] if series else None


def compatible_series(version: str | None) -> tuple[int, ...] | None:
    """The release numbers that must agree: ``(1,)`` for 1.4.2, ``(0, 2)`` for 0.2.5, ``(0, 0, 3)`` for 0.0.3.

    None when ``version`` does not start with a number. Missing parts count as 0 (``0`` -> ``(0, 0, 0)``).
    """
    match = _RELEASE_RE.match(version or "")
    if not match:
        return None
    major, minor, patch = (int(part or 0) for part in match.groups())
    if major:
        return (major,)
    return (0, minor) if minor else (0, 0, patch)


def _pip_range(series: tuple[int, ...], trained_version: str) -> str:
    if len(series) == 1:
        return f">={series[0]}.0,<{series[0] + 1}"
    if len(series) == 2:
        return f">=0.{series[1]}.0,<0.{series[1] + 1}"
    return f"=={trained_version}"


def pip_specifier(version: str) -> str:
    """The pip version specifier of the releases compatible with ``version`` (``>=0.2.0,<0.3``)."""
    series = compatible_series(version)
    return _pip_range(series, version) if series else f"=={version}"


def check_major_version(network: str, dist: str, trained_version: str, installed: Origin) -> None:
    """Raise when ``installed`` is ``dist`` in another compatible series than ``trained_version``.

    A network now provided by another distribution (or one without version metadata) is not
    judged: only a like-for-like comparison says something.
    """
    if installed.dist != dist:
        return
    trained, have = compatible_series(trained_version), compatible_series(installed.version)
    if trained is None or have is None or trained == have:
        return
    what = "another major version" if trained[0] or have[0] else "another 0.x release series"
    raise ConfigError(
        f"the model was trained with network '{network}' from {dist} {trained_version}, but {dist} "
        f"{installed.version} is installed ({what}): install {dist}=={trained_version}",
        hint=f"pip install '{dist}{_pip_range(trained, trained_version)}' (or {dist}=={trained_version}), "
        "then predict again",
    )
