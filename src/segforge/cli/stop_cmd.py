"""``segforge stop RUN``: finish a running training now, with a short annealing tail and a final checkpoint.

Ctrl-C pauses a training (resume with ``--continue``); ``stop`` ends it as a finished run: the
LR decays to 0 over a few more iterations, then ``checkpoint_final.pt``, the progress plot, the
manifest and (unless ``--skip-validation``) the end-of-training validation are written as at a
normal end. The request is a file in the fold folder that the training looks for after every
iteration (:mod:`segforge.training.stop_request`), so this works from any shell or machine that
sees the results folder, and under torchrun. Sending SIGUSR1 to the training's pid (recorded in
``training_process.json``) asks the same.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from segforge.cli import render
from segforge.cli.run_options import NetworkOption, PlansOption, TrainerOption

#: seconds between looks at the fold folder while --wait waits
_WAIT_POLL_S = 0.5


def _fold_folders(run: Path | None, task: str | None, config: str, trainer: str | None, network: str | None,
                  plans: str | None, fold: str | None) -> list[Path]:  # fmt: skip
    """The fold folders the arguments name (a fold folder, a run folder's folds, or the run of --task)."""
    from segforge.errors import UsageError

    if run is not None:
        if not run.is_dir():
            raise UsageError(f"{run} is not a folder", hint="pass a run folder (TRAINER__NETWORK__PLANS) or fold_N")
        if run.name.startswith("fold_"):
            return [run]
        run_dir = run
    elif task is not None:
        from segforge.inference.model_loading import find_dataset_folder
        from segforge.inference.run_lookup import RunQuery, choose_run
        from segforge.settings import get_folders

        config_dir = find_dataset_folder(get_folders().results.path, task) / config
        run_dir = choose_run(config_dir, RunQuery(config, trainer, network, plans))
    else:
        raise UsageError("name the training to stop", hint="segforge stop RUN_OR_FOLD_FOLDER, or --task N --fold F")
    if fold is not None:
        from segforge.data.splits import parse_fold

        return [run_dir / f"fold_{parse_fold(fold)}"]
    return sorted(p for p in run_dir.glob("fold_*") if p.is_dir())


def _running(folders: list[Path], explicit: bool) -> list[tuple[Path, dict[str, Any]]]:
    """The folders where a training runs now; a clear error when none does."""
    from segforge.errors import UsageError
    from segforge.training.stop_request import RUNNING_FILE, process_alive, read_running

    found, ended = [], []
    for folder in folders:
        record = read_running(folder)
        if record is None:
            continue
        if process_alive(record) is False:
            ended.append(f"{folder} (pid {record.get('pid')} has ended)")
            continue
        found.append((folder, record))
    if found:
        return found
    if ended:
        raise UsageError(f"no training is running: {'; '.join(ended)}",
                         hint="a killed training leaves its checkpoint: resume it with `segforge train ... "
                              "--continue`, then stop it")  # fmt: skip
    if not folders:
        where = "(the run folder has no fold folders)"
    elif explicit and len(folders) == 1:
        where = f"in {folders[0]}"
    else:
        where = "in any of: " + ", ".join(str(f) for f in folders)
    raise UsageError(f"no training is running {where} (no {RUNNING_FILE})",
                     hint="start it with `segforge train`; a finished run needs no stop")  # fmt: skip


def _wait(folder: Path, record: dict[str, Any]) -> str:
    """Until the training has left ``folder``; its manifest status then."""
    import json

    from segforge.training.stop_request import process_alive, read_running

    while read_running(folder) is not None and process_alive(record) is not False:
        time.sleep(_WAIT_POLL_S)
    try:
        return str(json.loads((folder / "manifest.json").read_text(encoding="utf-8")).get("status", "unknown"))
    except (OSError, ValueError):
        return "unknown"


def stop_command(
    run: Annotated[
        Optional[Path], typer.Argument(help="Fold folder, or run folder (stops each of its running folds).")
    ] = None,
    task: Annotated[Optional[str], typer.Option("--task", "-t", help="Or: the task number or name.")] = None,
    config: Annotated[str, typer.Option("--config", "-c", help="Configuration (with --task).")] = "3d_fullres",
    trainer: TrainerOption = None,
    network: NetworkOption = None,
    plans: PlansOption = None,
    fold: Annotated[
        Optional[str], typer.Option("--fold", "-f", help="Fold N or 'all' (default: every running one).")
    ] = None,
    tail: Annotated[
        Optional[int], typer.Option("--tail", min=1, help="Iterations over which the LR decays to 0 (default 10).")
    ] = None,
    skip_validation: Annotated[
        bool,
        typer.Option(
            "--skip-validation", help="Do not predict the validation cases at the end (later: --validate-only)."
        ),
    ] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until the training has finished.")] = False,
) -> None:
    """Finish a running training now: the LR anneals to 0 over a short tail, then checkpoint_final.pt is saved."""
    from segforge.training.stop_request import DEFAULT_TAIL_ITERATIONS, write_stop_request

    folders = _fold_folders(run, task, config, trainer, network, plans, fold)
    targets = _running(folders, explicit=run is not None or fold is not None)
    iterations = tail or DEFAULT_TAIL_ITERATIONS
    for folder, record in targets:
        write_stop_request(folder, tail=tail, skip_validation=skip_validation)
        render.message(
            f"stop requested for {folder} (pid {record.get('pid')} on {record.get('host')}): the LR decays to 0 "
            f"over {iterations} iteration(s), then checkpoint_final.pt is saved",
            style=None,
        )
    if wait:
        for folder, record in targets:
            render.message(f"{folder}: {_wait(folder, record)}", style=None)


def register(app: typer.Typer) -> None:
    app.command("stop")(stop_command)
