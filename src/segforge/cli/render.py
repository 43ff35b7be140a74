"""Console output for the commands: data on stdout, messages on stderr.

Keeping the two streams apart lets ``segforge plugins list --json | jq`` work while
progress and warnings still reach the user. Consoles are created per call, so they write
to whatever ``sys.stdout``/``sys.stderr`` are at that moment (``CliRunner`` and pytest swap
them). Text from plugins is printed literally, never parsed as rich markup.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

#: width used when stdout is not a terminal, so piped tables are not wrapped at 80 columns
PIPE_WIDTH = 200

STATUS_STYLES = {"ok": "green", "failed": "bold red", "blocked": "yellow"}


def _console(stderr: bool) -> Console:
    console = Console(stderr=stderr, highlight=False, soft_wrap=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PIPE_WIDTH
    return console


def out() -> Console:
    """A console on stdout, for data (tables, key/value listings)."""
    return _console(stderr=False)


def err() -> Console:
    """A console on stderr, for messages about the data."""
    return _console(stderr=True)


def print_json(data: Any) -> None:
    """``data`` as indented JSON on stdout, and nothing else (no colours, no wrapping)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def message(text: str, style: str | None = "dim") -> None:
    """One line for the user on stderr (notes, hidden-row counts)."""
    err().print(Text(text, style=style or ""))


def cell(value: Any, style: str | None = None) -> Text:
    """A table cell showing ``value`` literally ("-" for None/empty)."""
    if value is None or value == "" or value == []:
        return Text("-", style="dim")
    if isinstance(value, (list, tuple)):
        value = ", ".join(str(v) for v in value)
    return Text(str(value), style=style or "")


def status(value: str) -> Text:
    """A plugin status (ok/failed/blocked) in its colour."""
    return cell(value, STATUS_STYLES.get(value))


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> Table:
    """A table whose cells are shown literally; Text cells keep their style."""
    result = Table(
        title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD, show_edge=False, header_style="bold"
    )
    for column in columns:
        result.add_column(column, overflow="fold")
    for row in rows:
        result.add_row(*(v if isinstance(v, Text) else cell(v) for v in row))
    return result


def fields(pairs: Iterable[tuple[str, Any]], title: str | None = None) -> Table:
    """A two-column ``key  value`` listing (``plugins show``, ``components show``, ``info``)."""
    grid = Table.grid(padding=(0, 2))
    if title:
        grid.title, grid.title_justify, grid.title_style = title, "left", "bold"
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for key, value in pairs:
        grid.add_row(key, value if isinstance(value, Text) else cell(value))
    return grid


def show(*renderables: Any) -> None:
    """Print tables/listings on stdout, separated by blank lines.

    Into a pipe or file the lines lose the padding rich adds up to the table width, so
    ``grep`` and ``diff`` see clean text.
    """
    console = out()
    if console.is_terminal:
        for i, renderable in enumerate(renderables):
            if i:
                console.print()
            console.print(renderable)
        return
    with console.capture() as captured:
        for i, renderable in enumerate(renderables):
            if i:
                console.print()
            console.print(renderable)
    lines = [line.rstrip() for line in captured.get().splitlines()]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
