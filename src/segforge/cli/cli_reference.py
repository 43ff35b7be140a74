"""docs/cli.md, generated from the Typer app: every command, its help and its options.

Hand-written CLI docs drift from the code; this page is rendered from the same command
objects that parse the arguments (``typer.main.get_command(build_app())``, walked through
their public ``commands``, ``params`` and ``help`` attributes - Typer >= 0.26 vendors Click,
so nothing here imports click). ``scripts/gen_cli_docs.py`` writes the page and a test fails
when the committed page differs from what the code would generate.

Only segforge's own commands are listed: plugin command groups depend on what is installed.
"""

from __future__ import annotations

import inspect
from enum import Enum
from pathlib import Path
from typing import Any

DOCS_PATH = Path("docs") / "cli.md"
HEADER = """# CLI reference

<!-- Generated from the Typer app by `python scripts/gen_cli_docs.py`; do not edit by hand.
     tests/cli/test_cli_reference.py fails when this file is out of date. -->

Every command also prints this with `segforge COMMAND --help`. Errors are one line plus a
hint on stderr with a non-zero exit (2 for usage errors); set `SEGFORGE_DEBUG=1` for the
traceback. Installed plugins may add command groups of their own (not listed here; see
`segforge --help`).
"""


def markdown_escape(text: str) -> str:
    """Plain text made safe for Markdown prose and table cells (< > start HTML tags, _ * emphasis)."""
    for char, escaped in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("|", "\\|"), ("_", "\\_"), ("*", "\\*")):
        text = text.replace(char, escaped)
    return text


def _help_text(command: Any) -> str:
    return inspect.cleandoc(command.help or "")


def _default(param: Any) -> str:
    value = param.default
    if param.required:
        return "required"
    if getattr(param, "is_flag", False):
        return "off" if not value else "on"
    if value is None or value == [] or value == ():
        return ""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, (list, tuple)):
        return " ".join(f"`{v}`" for v in value)
    return f"`{value}`"


def _names(param: Any) -> str:
    if param.param_type_name == "argument":
        return f"`{param.name.upper()}`"
    return ", ".join(f"`{opt}`" for opt in [*param.opts, *param.secondary_opts])


def _params_table(command: Any) -> list[str]:
    params = [p for p in command.params if not getattr(p, "hidden", False)]
    if not params:
        return []
    lines = ["| option | default | description |", "|---|---|---|"]
    for p in params:
        help_text = " ".join((p.help or "").split())
        repeat = " Repeatable." if getattr(p, "multiple", False) and "repeat" not in help_text.lower() else ""
        lines.append(f"| {_names(p)} | {_default(p)} | {markdown_escape(help_text)}{repeat} |")
    return lines


def _usage(path: list[str], command: Any) -> str:
    args = [p.name.upper() for p in command.params if p.param_type_name == "argument"]
    sub = " COMMAND" if hasattr(command, "commands") else ""
    return "    " + " ".join([*path, "[OPTIONS]", *args]) + sub


def _section(path: list[str], command: Any, level: int) -> list[str]:
    lines = [f"{'#' * level} {' '.join(path)}", "", _usage(path, command), ""]
    help_text = _help_text(command)
    if help_text:
        lines += [markdown_escape(help_text), ""]
    table = _params_table(command)
    if table:
        lines += [*table, ""]
    for name, sub in getattr(command, "commands", {}).items():
        if not getattr(sub, "hidden", False):
            lines += _section([*path, name], sub, min(level + 1, 4))
    return lines


def _contents(path: list[str], command: Any, depth: int = 0) -> list[str]:
    lines = []
    for name, sub in getattr(command, "commands", {}).items():
        if getattr(sub, "hidden", False):
            continue
        full = [*path, name]
        anchor = "-".join(full).lower()
        summary = markdown_escape(_help_text(sub).split("\n\n")[0].replace("\n", " "))
        lines.append(f"{'  ' * depth}- [{' '.join(full)}](#{anchor}) - {summary}")
        lines += _contents(full, sub, depth + 1)
    return lines


def render_cli_reference() -> str:
    """The Markdown of docs/cli.md for segforge's own commands (no plugins loaded)."""
    import typer

    from segforge.cli.app import build_app

    root = typer.main.get_command(build_app())
    lines = [HEADER, "## Commands", "", *_contents(["segforge"], root), ""]
    lines += _section(["segforge"], root, 2)
    return "\n".join(lines).rstrip() + "\n"
