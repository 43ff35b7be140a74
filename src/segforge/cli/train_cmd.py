"""``segforge train --task N --fold F``: train one fold (nnU-Net's ``run_training`` / ``nnUNetv2_train``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def train_command(
    task: Annotated[str, typer.Option("--task", "-t", help="Task number (4), id (004) or folder name.")],
    fold: Annotated[str, typer.Option("--fold", "-f", help="Fold 0..4 of the 5-fold split, or 'all'.")],
    config: Annotated[
        Optional[str],
        typer.Option(
            "--config",
            help="Configuration from the plans (default 3d_fullres; with --time-budget and no --config, "
            "the budget may train 2d when 3d_fullres would get too few steps).",
        ),
    ] = None,
    network: Annotated[
        Optional[str],
        typer.Option("--network", help="Registered network (default: the plans'); another re-derives the plans."),
    ] = None,
    trainer: Annotated[
        Optional[str],
        typer.Option("--trainer", help="Registered trainer (default: 'default' or the network's recommended one)."),
    ] = None,
    loss: Annotated[Optional[str], typer.Option("--loss", help="Registered loss (default: the trainer's).")] = None,
    plans: Annotated[
        str, typer.Option("--plans", help="Plans name (if segforgePlans is missing: segforgePlans__NETWORK).")
    ] = "segforgePlans",
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    resume: Annotated[
        bool, typer.Option("--continue", help="Resume from the newest valid checkpoint of this fold.")
    ] = False,
    pretrained_weights: Annotated[
        Optional[Path], typer.Option("--pretrained-weights", help="Initialise from a checkpoint's weights.")
    ] = None,
    fp32: Annotated[bool, typer.Option("--fp32", help="No mixed precision (CUDA) and no bf16 (CPU budget).")] = False,
    deterministic: Annotated[
        bool, typer.Option("--deterministic", help="Deterministic algorithms, seeded, in-process loading.")
    ] = False,
    epochs: Annotated[Optional[int], typer.Option("--epochs", min=1, help="Number of epochs (default 1000).")] = None,
    iterations_per_epoch: Annotated[
        Optional[int], typer.Option("--iterations-per-epoch", min=1, help="Training iterations per epoch (250).")
    ] = None,
    time_budget: Annotated[
        Optional[float],
        typer.Option("--time-budget", help="Train for this many minutes of wall clock, schedule sized to fit."),
    ] = None,
    overrides: Annotated[
        Optional[list[str]],
        typer.Option("--set", help="Override a trainer param (KEY=VALUE, loss.KEY=VALUE); repeatable."),
    ] = None,
    callbacks: Annotated[
        Optional[list[str]],
        typer.Option(
            "--callback", help="Registered callback to run (params: --set callback.NAME.KEY=VALUE); repeatable."
        ),
    ] = None,
    validate_only: Annotated[
        bool,
        typer.Option("--validate-only", "-val", help="Only validate the final checkpoint."),
    ] = False,
    npz: Annotated[
        bool, typer.Option("--npz", help="Validation also writes probabilities (CASE.npz + CASE.json).")
    ] = False,
    num_gpus: Annotated[
        Optional[int],
        typer.Option(
            "--num-gpus",
            help="Data-parallel on G GPUs of this node (re-launches under torchrun); with --device cpu: G processes.",
        ),
    ] = None,
) -> None:
    """Train a network on one fold; checkpoints, log, progress.png and manifest.json go to
    <results>/<dataset>/<config>/<trainer>__<network>__<plans>/fold_<F>/.

    Ctrl-C (or SIGTERM) saves checkpoint_latest.pt and exits; --continue resumes it.
    `segforge stop` (or SIGUSR1) finishes it now: the LR anneals to 0 over a short tail, then checkpoint_final.pt.
    """
    from segforge.cli import render
    from segforge.training.api import train
    from segforge.training.clock import process_age_s
    from segforge.training.run_dir import command_line
    from segforge.training.run_setup import RunRequest

    request = RunRequest(
        task=task,
        fold=fold,
        configuration=config or "3d_fullres",
        configuration_explicit=config is not None,
        network=network,
        trainer=trainer,
        loss=loss,
        plans_name=plans,
        device=device,
        resume=resume,
        pretrained_weights=pretrained_weights,
        fp32=fp32,
        deterministic=deterministic,
        epochs=epochs,
        iterations_per_epoch=iterations_per_epoch,
        time_budget_min=time_budget,
        overrides=list(overrides or []),
        callbacks=list(callbacks or []),
        started_ago_s=process_age_s() if _is_segforge_program() else 0.0,
        npz=npz,
    )
    if num_gpus is not None:
        _relaunch(num_gpus, request)
        return
    if validate_only:
        from segforge.cli.evaluate_cmd import summary_table
        from segforge.training.validation import validate_only as run_validation_only

        checked = run_validation_only(request)
        if checked is not None and checked.summary is not None:
            render.show(summary_table(checked.summary))
        return
    request.command = command_line() if _is_segforge_program() else _canonical_command(request)
    result = train(request)
    from segforge.training.distributed import detect_environment

    if (detect_environment() or (0,))[0] != 0:
        return  # under torchrun only rank 0 prints the result (the others' would repeat it)
    best = f"{result.best_ema:.4f}" if result.best_ema is not None else "-"
    final = ", ".join(f"{d:.4f}" for d in result.final_pseudo_dice) if result.final_pseudo_dice else "-"
    render.show(
        render.table(
            ("status", "epochs", "iterations", "best EMA pseudo Dice", "final pseudo Dice", "seconds", "checkpoints"),
            [
                (
                    result.status,
                    result.epochs,
                    result.iterations,
                    best,
                    final,
                    f"{result.elapsed_s:.0f}",
                    result.checkpoints,
                )
            ],
        )
    )


def _canonical_command(request) -> list[str]:
    """The command rebuilt from the parsed options (when ``main`` was called in-process with its own args)."""
    args = ["segforge", "train", "--task", request.task, "--fold", str(request.fold), "--config", request.configuration]
    for flag, value in (
        ("--network", request.network),
        ("--trainer", request.trainer),
        ("--loss", request.loss),
        ("--epochs", request.epochs),
        ("--iterations-per-epoch", request.iterations_per_epoch),
        ("--time-budget", request.time_budget_min),
        ("--pretrained-weights", request.pretrained_weights),
    ):
        if value is not None:
            args += [flag, str(value)]
    flags = (("--continue", request.resume), ("--fp32", request.fp32), ("--npz", request.npz))
    args += [flag for flag, on in flags if on]
    args += ["--deterministic"] if request.deterministic else []
    for name in request.callbacks:
        args += ["--callback", name]
    for item in request.overrides:
        args += ["--set", item]
    return args


def _relaunch(num_gpus: int, request) -> None:
    """``--num-gpus G``: the same command without the option, as G torchrun workers (see training.launch)."""
    import sys

    from segforge.training.launch import relaunch, strip_option

    own = _is_segforge_program()
    args = (
        strip_option(sys.argv[1:])
        if own
        else [*_canonical_command(request)[1:], "--device", request.device, "--plans", request.plans_name]
    )
    code = relaunch(num_gpus, request.device, args, replace_process=own)
    if code:
        raise typer.Exit(code)


def _is_segforge_program() -> bool:
    """True when this process is the ``segforge`` program (not a test runner or notebook calling main)."""
    import sys

    program = Path(sys.argv[0])
    return program.name == "segforge" or (program.name == "__main__.py" and program.parent.name == "segforge")


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
