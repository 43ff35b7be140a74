"""``segforge verify --task N``: check a raw dataset and list every problem with its fix."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from segforge.cli import render

if TYPE_CHECKING:  # pragma: no cover
    from segforge.io.verify import VerifyReport

SEVERITY_STYLES = {"error": "bold red", "warning": "yellow"}


def print_problems(report: VerifyReport) -> None:
    """Errors first, then warnings, as a table on stderr (the data of this command is its verdict)."""
    problems = report.errors + report.warnings
    if not problems:
        return
    rows = [(render.cell(p.severity, SEVERITY_STYLES[p.severity]), p.file, p.message, p.fix) for p in problems]
    title = f"{len(report.errors)} error(s), {len(report.warnings)} warning(s) in {report.dataset.name}"
    render.err().print(render.table(("severity", "file", "problem", "fix"), rows, title=title))


def verify_command(
    task: Annotated[str, typer.Option("--task", "-t", help="Task number (4), id (004) or folder name (Task004_X).")],
    num_processes: Annotated[int, typer.Option("-np", "--num-processes", help="Cases read in parallel.")] = 2,
) -> None:
    """Check a raw dataset: files present, readable, co-registered, label values declared, no NaN.

    Every problem is listed with the file and how to fix it; exit code 1 when there are errors,
    0 when there are only warnings.
    """
    from segforge.errors import UsageError
    from segforge.io.layouts import resolve_task
    from segforge.io.verify import verify_folder

    if num_processes < 1:
        raise UsageError(f"-np must be at least 1, got {num_processes}", hint="pass -np 1 to check in one process")
    report = verify_folder(resolve_task(task), num_processes=num_processes, show_progress=True)
    print_problems(report)
    report.raise_for_errors()
    typer.echo(report.summary())


def register(app: typer.Typer) -> None:
    app.command("verify")(verify_command)
