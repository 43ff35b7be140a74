"""``segforge info`` (and ``segforge --version -v``): everything a bug report needs.

Versions, CUDA, the three data folders with where each came from, every plugin with its
status and the plugins' report-header lines. It must keep working when a plugin failed —
that is when people need it — so it never calls ``require_ok()``.
"""

from __future__ import annotations

import importlib.metadata
import platform
from typing import Annotated, Any

import typer

from segforge.cli import render

#: distributions whose versions matter when reporting a problem
PACKAGES = ("torch", "numpy", "SimpleITK", "pydantic", "typer", "pluggy", "rich")


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def cuda_info() -> dict[str, Any]:
    """CUDA availability; imports torch (never done by ``--version`` alone)."""
    try:
        import torch
    except Exception as exc:  # a broken torch install is worth reporting, not crashing on
        return {"available": False, "version": None, "devices": [], "error": f"{type(exc).__name__}: {exc}"}
    available = bool(torch.cuda.is_available())
    devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if available else []
    return {"available": available, "version": torch.version.cuda, "devices": devices}


def collect_info() -> dict[str, Any]:
    """The data behind ``segforge info --json``."""
    from segforge._version import __version__
    from segforge.cli.plugins_cmd import plugins_report
    from segforge.plugins import get_manager
    from segforge.settings import get_folders

    manager = get_manager()
    return {
        "segforge": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: _version(name) for name in PACKAGES},
        "cuda": cuda_info(),
        "folders": get_folders().as_dict(),
        **plugins_report(manager),
        "report_header": manager.report_header(),
    }


def _cuda_text(cuda: dict[str, Any]) -> str:
    if cuda.get("error"):
        return f"unknown (torch: {cuda['error']})"
    if not cuda["available"]:
        return "not available"
    return f"available (CUDA {cuda['version']}: {', '.join(cuda['devices'])})"


def print_info(as_json: bool = False) -> None:
    """Print :func:`collect_info` as JSON or as tables on stdout."""
    from segforge.cli.plugins_cmd import plugins_table, problems_table
    from segforge.plugins import get_manager

    data = collect_info()
    if as_json:
        render.print_json(data)
        return
    pairs = [("segforge", data["segforge"]), ("python", f"{data['python']} ({data['platform']})")]
    pairs += [(name, version or "not installed") for name, version in data["packages"].items()]
    pairs.append(("CUDA", _cuda_text(data["cuda"])))
    folders = [(key, f["path"], f["source"]) for key, f in data["folders"].items()]
    manager = get_manager()
    parts: list[Any] = [
        render.fields(pairs),
        render.table(("folder", "path", "from"), folders, title="folders"),
        plugins_table(manager, title="plugins")[0],
    ]
    problems = problems_table(manager)
    if problems is not None:
        parts.append(problems)
    if data["report_header"]:
        lines = [line.partition(": ")[::2] for line in data["report_header"]]  # "plugin: text"
        parts.append(render.fields(lines, title="plugin report"))
    render.show(*parts)


def info(
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
) -> None:
    """Versions, CUDA, data folders and plugins: paste this into a bug report."""
    print_info(as_json)


def register(app: typer.Typer) -> None:
    """Add ``segforge info`` to the root app."""
    app.command("info")(info)
