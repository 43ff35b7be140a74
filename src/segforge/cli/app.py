"""The root ``segforge`` app, the ``-p`` plugin options and the one error handler.

Command modules each expose ``register(app)``; they are listed in :data:`COMMAND_MODULES`
and must import nothing heavy at module level, so ``segforge --version`` stays fast (it
imports no torch and loads no plugins).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Annotated, Optional

import typer

from segforge._version import __version__
from segforge.errors import SegforgeError

#: modules under segforge.cli that add commands, in help order
COMMAND_MODULES: list[str] = ["info_cmd", "plugins_cmd", "components_cmd"]


def _split_plugin_options(args: list[str]) -> tuple[list[str], list[str]]:
    """Pre-read root ``-p`` options (before the sub-command): (blocked names, extra modules)."""
    blocked, extra = [], []
    i = 0
    while i < len(args) and args[i].startswith("-"):
        arg = args[i]
        value = None
        if arg == "-p" and i + 1 < len(args):
            value, i = args[i + 1], i + 1
        elif arg.startswith("-p") and len(arg) > 2:
            value = arg[2:].lstrip("=")
        if value is not None:
            (blocked if value.startswith("no:") else extra).append(value.removeprefix("no:"))
        i += 1
    return blocked, extra


def _version_callback(value: bool) -> None:
    if value:
        verbose = any(a in ("-v", "--verbose") for a in sys.argv[1:])
        if verbose:
            from segforge.cli.info_cmd import print_info

            print_info()
        else:
            typer.echo(f"segforge {__version__}")
        raise typer.Exit()


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="segforge",
        help="Self-configuring medical image segmentation (nnU-Net style), built from plugins.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        rich_markup_mode="rich",
    )

    @app.callback()
    def root(
        version: Annotated[
            bool,
            typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version and exit (-v: details)."),
        ] = False,
        verbose: Annotated[bool, typer.Option("--verbose", "-v", help="With --version: versions, folders, plugins.")] = False,
        plugin: Annotated[
            Optional[list[str]],
            typer.Option("-p", help="Load plugin MODULE, or block one with no:NAME (repeatable).", metavar="MODULE|no:NAME"),
        ] = None,
    ) -> None:
        """Self-configuring medical image segmentation (nnU-Net style), built from plugins."""

    for name in COMMAND_MODULES:
        importlib.import_module(f"segforge.cli.{name}").register(app)
    return app


def _fast_path(args: list[str]) -> bool:
    if args == ["--version"]:
        print(f"segforge {__version__}")
        return True
    return False


def report_error(exc: SegforgeError) -> None:
    """Print ``error: ...`` and ``hint: ...`` on stderr (traceback only with SEGFORGE_DEBUG=1)."""
    from rich.console import Console
    from rich.markup import escape

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    if os.environ.get("SEGFORGE_DEBUG", "") not in ("", "0"):
        console.print_exception()
    console.print(f"[bold red]error:[/] {escape(exc.message)}")
    if exc.hint:
        console.print(f"[yellow]hint:[/] {escape(exc.hint)}")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``segforge`` console script and ``python -m segforge``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if _fast_path(args):
        return
    try:
        from segforge import plugins

        blocked, extra = _split_plugin_options(args)
        plugins.configure(blocked=blocked, extra=extra)
        app = build_app()
        if any(not a.startswith("-") for a in args):  # a sub-command: plugins may add groups
            plugins.get_manager().add_commands(app)
        app(args=args, prog_name="segforge")
    except SegforgeError as exc:
        report_error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
