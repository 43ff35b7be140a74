"""The root ``segforge`` app, the ``-p`` plugin options and the one error handler.

Command modules each expose ``register(app)``; they are listed in :data:`COMMAND_MODULES`
and must import nothing heavy at module level, so ``segforge --version`` stays fast (it
imports no torch and loads no plugins).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from segforge._version import __version__
from segforge.errors import SegforgeError

#: modules under segforge.cli that add commands, in help order
COMMAND_MODULES: list[str] = [
    "info_cmd",
    "plugins_cmd",
    "components_cmd",
    "convert_cmd",
    "import_cmd",
    "verify_cmd",
    "preprocess_cmd",
    "plan_cmd",
    "train_cmd",
    "stop_cmd",
    "predict_cmd",
    "evaluate_cmd",
    "demo_cmd",
    "ensemble_cmd",
    "best_config_cmd",
    "postprocess_cmd",
    "export_model_cmd",
    "install_model_cmd",
    "import_nnunet_cmd",
]


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


class SegforgeGroup(TyperGroup):
    """The root command group: turns a SegforgeError from any command into ``error:``/``hint:``.

    Handling it here (not only in :func:`main`) gives the same output and exit code to
    everything that runs the app, ``typer.testing.CliRunner`` and plugin command groups included.
    """

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except SegforgeError as exc:
            report_error(exc)
            raise typer.Exit(exc.exit_code) from None
        except BrokenPipeError:  # `segforge ... | head`: the reader left; stop quietly, as a SIGPIPE'd tool does
            _silence_stdout()
            raise typer.Exit(141) from None
        except OSError as exc:  # disk full, permissions, a file in a folder's place: one line, no traceback
            from segforge.resources import os_error

            error = os_error(exc)
            report_error(error)
            raise typer.Exit(error.exit_code) from None


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not raise on the closed pipe again."""
    import os
    import sys

    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _show_version(verbose: bool) -> None:
    if verbose:
        from segforge.cli.info_cmd import print_info

        print_info()
    else:
        typer.echo(f"segforge {__version__}")


def build_app() -> typer.Typer:
    """The root app with segforge's own commands (plugin command groups are added by :func:`main`)."""
    app = typer.Typer(
        name="segforge",
        cls=SegforgeGroup,
        help="Self-configuring medical image segmentation (nnU-Net style), built from plugins.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        rich_markup_mode="rich",
    )

    # --version is handled in the callback body, not by an eager option callback: an eager
    # callback runs before ``-v`` is parsed, so ``--version -v`` could not see it.
    @app.callback(invoke_without_command=True)
    def root(
        ctx: typer.Context,
        version: Annotated[bool, typer.Option("--version", help="Show the version and exit (-v: details).")] = False,
        verbose: Annotated[
            bool, typer.Option("--verbose", "-v", help="With --version: versions, folders, plugins.")
        ] = False,
        plugin: Annotated[
            Optional[list[str]],
            typer.Option(
                "-p", help="Load plugin MODULE, or block one with no:NAME (repeatable).", metavar="MODULE|no:NAME"
            ),
        ] = None,
    ) -> None:
        """Self-configuring medical image segmentation (nnU-Net style), built from plugins."""
        if plugin:  # main() has applied them already; this serves apps run without main (tests)
            from segforge import plugins

            values = [p.lstrip("=") for p in plugin]  # `-p=x` as _split_plugin_options reads it
            plugins.configure(
                blocked=[p.removeprefix("no:") for p in values if p.startswith("no:")],
                extra=[p for p in values if not p.startswith("no:")],
            )
        if version:
            _show_version(verbose)
            raise typer.Exit()
        if ctx.invoked_subcommand is None:
            typer.echo(ctx.get_help())
            raise typer.Exit(2)

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
