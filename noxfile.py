"""Developer sessions: ``nox -s lint``, ``nox -s tests``, ``nox -s slow``, ``nox -s plugins``.

Each session installs torch first, pinned to ``TORCH_SPEC`` (default ``torch==2.13.0``, the
CPU wheel available on the project's CPU machines), so no dependency can pull a multi-GB
CUDA build. On a GPU machine set ``SEGFORGE_TORCH_SPEC`` (e.g. ``torch>=2.3``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.default_venv_backend = "venv"

TORCH_SPEC = os.environ.get("SEGFORGE_TORCH_SPEC", "torch==2.13.0")
ROOT = Path(__file__).parent
PLUGIN_DIRS = sorted(
    p.parent for p in [*ROOT.glob("plugins/*/pyproject.toml"), *ROOT.glob("examples/*/pyproject.toml")]
)


def _install_segforge(session: nox.Session, extras: str = "test") -> None:
    session.install(TORCH_SPEC)
    session.install("-e", f".[{extras}]")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff lint and format check over the package, tests, plugins and examples."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", "src", "tests", "plugins", "examples", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "plugins", "examples", "benchmarks", "noxfile.py")


@nox.session
def tests(session: nox.Session) -> None:
    """The default test run (the same command as README and CI)."""
    _install_segforge(session)
    session.run("pytest", "-q", *session.posargs)


@nox.session
def slow(session: nox.Session) -> None:
    """End-to-end tests on real data that take minutes (``-m slow``)."""
    _install_segforge(session)
    session.run("pytest", "-q", "-m", "slow", *session.posargs)


@nox.session
def plugins(session: nox.Session) -> None:
    """Install each plugin package into a fresh venv with segforge, run its tests, check it is listed;
    then the provenance test (a model of an uninstalled or other-major plugin gives a one-line error)."""
    _install_segforge(session)
    # provenance end to end (before the plugins are installed here: it installs and removes its own copy)
    session.run("pytest", "-q", "-m", "slow", "tests/test_plugin_provenance.py")
    for folder in PLUGIN_DIRS:
        session.install(str(folder))
        if (folder / "tests").is_dir():
            session.run("pytest", "-q", str(folder / "tests"))
        out = session.run("segforge", "plugins", "list", "--json", silent=True)
        data = json.loads(out)
        listed = data["plugins"] if isinstance(data, dict) else data
        dists = {p["dist"] for p in listed if p["status"] == "ok"}
        name = _dist_name(folder)
        if name not in dists:
            session.error(f"{name} is installed but `segforge plugins list` does not show it as ok")
        session.log(f"{name}: listed and its tests pass")
    _check_generated_skeleton(session)


def _check_generated_skeleton(session: nox.Session) -> None:
    """``segforge plugins new`` output installs, is listed as ok and passes its contract tests as generated."""
    import tempfile

    parent = Path(tempfile.mkdtemp(prefix="segforge-skeleton-"))
    session.run("segforge", "plugins", "new", "skeleton-check", "-o", str(parent))
    package = parent / "segforge-skeleton-check"
    session.install("-e", str(package))
    session.run("pytest", "-q", str(package / "tests"))
    out = session.run("segforge", "plugins", "list", "--json", silent=True)
    data = json.loads(out)
    listed = data["plugins"] if isinstance(data, dict) else data
    if "segforge-skeleton-check" not in {p["dist"] for p in listed if p["status"] == "ok"}:
        session.error("the generated plugin skeleton is installed but not listed as ok")
    session.run("pip", "uninstall", "-y", "segforge-skeleton-check")
    session.log("generated plugin skeleton: installed, listed and its tests pass")


def _dist_name(folder: Path) -> str:
    import tomllib

    return tomllib.loads((folder / "pyproject.toml").read_text())["project"]["name"]
