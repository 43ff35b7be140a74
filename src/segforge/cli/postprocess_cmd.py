"""``segforge postprocess determine|apply``: nnU-Net's ``nnUNet_determine_postprocessing`` and its application.

``determine`` gathers the cross-validation predictions of a trained model's folds (those with
``validation/``) into ``<run>/crossval_results_folds_<ids>/``, decides whether keeping only
the largest connected component helps (all foreground, then per class) and writes
``<run>/postprocessing.json``, which ``segforge predict`` then applies. ``apply`` runs a
decision on a folder of segmentations.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from segforge.cli import render
from segforge.cli.run_options import NetworkOption, PlansOption, TrainerOption

if TYPE_CHECKING:  # pragma: no cover
    from segforge.postprocessing.decision import PostprocessingDecision


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def decision_table(decision: PostprocessingDecision) -> Any:
    """One row per step: the mean Dice without and with it, and whether it is applied."""
    rows = [("largest foreground component", "all", _fmt(decision.foreground_dice_before),
             _fmt(decision.foreground_dice_with_lcc), "yes" if decision.foreground_lcc else "no")]  # fmt: skip
    for rule in decision.per_class:
        rows.append((f"largest component of label {rule.label}", str(rule.label), _fmt(rule.dice_without),
                     _fmt(rule.dice_with), "yes" if rule.applied else "no"))  # fmt: skip
    for label in decision.labels:
        key = str(label)
        rows.append(("result", key, _fmt(decision.dice_before[key]), _fmt(decision.dice_after[key]), "-"))
    title = f"{decision.num_cases} cross-validation case(s): {decision.describe()}"
    return render.table(("step", "label", "Dice without", "Dice with", "applied"), rows, title=title)


def determine_command(
    ctx: typer.Context,
    model_dir: Annotated[
        Optional[Path], typer.Option("-m", "--model-dir", help="Run folder (or a fold folder).")
    ] = None,
    task: Annotated[Optional[str], typer.Option("--task", "-t", help="Task number or name.")] = None,
    config: Annotated[str, typer.Option("--config", "-c", help="Configuration.")] = "3d_fullres",
    trainer: TrainerOption = None,
    network: NetworkOption = None,
    plans: PlansOption = None,
    folds: Annotated[
        Optional[list[str]], typer.Option("--folds", "-f", help="Folds to use (default: every fold with validation/).")
    ] = None,
) -> None:
    """Decide from cross-validation whether largest-component removal helps; write postprocessing.json."""
    from segforge.cli.predict_cmd import parse_folds
    from segforge.packaging.model_source import find_model_dir
    from segforge.plugins import get_registries
    from segforge.postprocessing.crossval import determine_for_run

    registries = get_registries()
    fold_names = parse_folds(folds, list(ctx.args))
    run_dir = find_model_dir(task, model_dir, config, trainer, network, plans, registries)
    decision, path = determine_for_run(run_dir, fold_names)  # read with the IO of the validated files' ending
    render.show(decision_table(decision))
    render.message(f"cross-validation predictions in {decision.source}")
    render.message(f"wrote {path}")


def apply_command(
    input_folder: Annotated[Path, typer.Option("-i", "--input", help="Folder of segmentations.")],
    output_folder: Annotated[Path, typer.Option("-o", "--output", help="Folder for the postprocessed files.")],
    pp_json: Annotated[Optional[Path], typer.Option("--pp-json", help="postprocessing.json to apply.")] = None,
    model_dir: Annotated[
        Optional[Path], typer.Option("-m", "--model-dir", help="Or: the run folder holding postprocessing.json.")
    ] = None,
) -> None:
    """Apply a postprocessing.json to every segmentation of a folder."""
    from segforge.errors import UsageError
    from segforge.evaluation.evaluate_folder import reader_for_folder
    from segforge.plugins import get_registries
    from segforge.postprocessing.apply import apply_to_folder, find_decision, load_decision

    if (pp_json is None) == (model_dir is None):
        raise UsageError(
            "pass exactly one of --pp-json FILE and -m RUN_FOLDER",
            hint="e.g. segforge postprocess apply -i preds -o preds_pp --pp-json run/postprocessing.json",
        )
    path = pp_json if pp_json is not None else find_decision(model_dir)
    if path is None:
        raise UsageError(f"{model_dir} has no postprocessing.json",
                         hint=f"run `segforge postprocess determine -m {model_dir}` first")  # fmt: skip
    decision = load_decision(path)
    image_io = reader_for_folder(Path(input_folder), get_registries())  # PNG segmentations: natural2d
    written = apply_to_folder(input_folder, output_folder, decision, image_io)
    render.message(f"{decision.describe()}: {len(written)} file(s) written to {output_folder}")


EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": False}


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Largest-connected-component postprocessing: determine it from cross-validation, apply it.",
        no_args_is_help=True,
    )
    group.command("determine", context_settings=EXTRA_ARGS)(determine_command)
    group.command("apply")(apply_command)
    app.add_typer(group, name="postprocess")
