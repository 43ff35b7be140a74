"""``segforge find-best-config --task N``: rank configurations and ensembles (nnUNetv2_find_best_configuration).

Prints the ranking as a table and writes ``<results>/<dataset>/inference_instructions.json``
and ``.txt`` with the winner and the commands that predict new images with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from segforge.cli import render
from segforge.cli.multi_value import multi_value_command

if TYPE_CHECKING:  # pragma: no cover
    from segforge.selection.best_config import SearchResult

DEFAULT_FOLDS = ["0", "1", "2", "3", "4"]
MULTI = ("--configs", "-c", "--trainers", "-tr", "--folds", "-f")


def _dice(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def ranking_table(result: SearchResult) -> Any:
    rows = []
    for i, c in enumerate(result.ranking):
        per_label = ", ".join(f"{k}: {_dice(m.get('dice'))}" for k, m in c.summary.mean.items())
        configs = " + ".join(r.configuration for r in c.runs)
        rows.append((str(i + 1), c.name, c.kind, configs, str(len(c.summary.metric_per_case)),
                     _dice(c.summary.foreground_mean.get("dice")), per_label))  # fmt: skip
    title = f"{result.dataset_folder.name}: cross-validation, folds {' '.join(result.folds)}"
    return render.table(("rank", "model", "kind", "configuration", "cases", "Dice", "Dice per label"), rows, title)


def _describe(path: Any) -> str:
    from segforge.config.jsonio import load_model
    from segforge.postprocessing.decision import PostprocessingDecision

    return load_model(path, PostprocessingDecision).describe()


def _check_folds(folds: list[str]) -> list[str]:
    from segforge.errors import UsageError

    values = [f.strip() for v in folds for f in v.split(",") if f.strip()]
    bad = [f for f in values if not f.isdigit()]
    if bad or not values:
        raise UsageError(f"invalid fold '{bad[0] if bad else ''}'", hint="folds are numbers, e.g. --folds 0 1 2 3 4")
    return values


def find_best_config_command(
    task: Annotated[str, typer.Option("--task", "-t", "-d", help="Task number or name.")],
    configs: Annotated[
        Optional[list[str]], typer.Option("--configs", "-c", help="Configurations to consider (default: all trained).")
    ] = None,
    trainers: Annotated[
        Optional[list[str]], typer.Option("--trainers", "-tr", help="Trainers to consider (default: all).")
    ] = None,
    folds: Annotated[
        Optional[list[str]], typer.Option("--folds", "-f", help="Folds of the cross-validation (default: 0 1 2 3 4).")
    ] = None,
    no_ensembling: Annotated[bool, typer.Option("--no-ensembling", help="Do not try pairwise ensembles.")] = False,
    num_processes: Annotated[int, typer.Option("-np", "--num-processes", help="Cases processed in parallel.")] = 2,
    no_postprocessing: Annotated[
        bool, typer.Option("--no-postprocessing", help="Do not determine postprocessing for the winner.")
    ] = False,
    continue_: Annotated[
        bool, typer.Option("--continue", help="Keep ensembled validation cases written by an earlier run.")
    ] = False,
) -> None:
    """Find the best configuration (or pairwise ensemble) by cross-validation Dice; write inference instructions."""
    from segforge.errors import UsageError
    from segforge.inference.model_loading import find_dataset_folder
    from segforge.plugins import get_registries
    from segforge.selection.best_config import determine_postprocessing, find_best_configuration, find_references
    from segforge.selection.inference_instructions import write_instructions
    from segforge.settings import get_folders

    if num_processes < 1:
        raise UsageError(f"-np must be at least 1, got {num_processes}", hint="pass -np 1")
    get_registries()  # a failed plugin stops here, with how to disable it
    image_io = None  # each step reads with the image IO registered for the dataset's file ending
    dataset_folder = find_dataset_folder(get_folders().results.path, task)
    result = find_best_configuration(dataset_folder, folds=_check_folds(folds or DEFAULT_FOLDS), configurations=configs,
                                     trainers=trainers, ensembles=not no_ensembling, num_processes=num_processes,
                                     skip_existing=continue_, image_io=image_io)  # fmt: skip
    render.show(ranking_table(result))
    for name, _, reason in result.skipped:
        render.message(f"skipped {name}: {reason}", style="yellow")
    if not no_postprocessing:
        pp = determine_postprocessing(result.best, result.folds, image_io)
        if pp is not None:
            render.message(f"postprocessing for {result.best.name}: {_describe(pp)} ({pp})")
    ending = find_references(dataset_folder.name, result.best.runs).file_ending
    path, instructions = write_instructions(result, ending)
    render.message(f"best: {result.best.name} (Dice {_dice(instructions.best.foreground_dice)}); wrote {path}",
                   style=None)  # fmt: skip
    for command in instructions.commands:
        render.message(f"  {command}", style=None)


def register(app: typer.Typer) -> None:
    app.command("find-best-config", cls=multi_value_command(*MULTI))(find_best_config_command)
