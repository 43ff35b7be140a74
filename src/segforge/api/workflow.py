"""``plan_and_preprocess``, ``train`` and ``evaluate``: typed calls over what the CLI commands run.

``plan_and_preprocess`` runs the command's own steps (fingerprint, plan, preprocess) and returns
the plans it wrote; ``train`` builds the :class:`~segforge.training.run_setup.RunRequest` that
``segforge train`` would and calls :func:`segforge.training.api.train`; ``evaluate`` is
:func:`segforge.evaluation.evaluate_folder.evaluate_folder` with the reader chosen as
``segforge evaluate`` chooses it. Progress goes to stderr, as on the command line.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from segforge.config.plans import Plans
    from segforge.evaluation.evaluate_folder import EvaluationSummary
    from segforge.training.loop import TrainingResult

PathLike = str | os.PathLike[str]


def plan_and_preprocess(
    task: str | int,
    *,
    configurations: Sequence[str] | None = None,
    network: str = "generic_unet",
    planner: str = "default",
    num_processes: int | None = None,
    verify: bool = False,
    preprocess: bool = True,
    overwrite_plans: bool = False,
) -> Plans:
    """Fingerprint, plan and (unless ``preprocess=False``) preprocess a raw task; returns its plans.

    Same steps, files and resumption as ``segforge plan-and-preprocess``. ``configurations``
    chooses what is preprocessed (default: 2d, 3d_fullres and 3d_lowres where planned).
    """
    from segforge.planning.workflow import default_workers
    from segforge.planning.workflow import plan_and_preprocess as run

    return run(
        str(task), configs=list(configurations) if configurations else None, verify=verify, preprocess=preprocess,
        planner=planner, network=network, workers=num_processes or default_workers(),
        overwrite_plans=overwrite_plans, report=_to_stderr,
    )  # fmt: skip


def _to_stderr(text: str) -> None:
    print(text, file=sys.stderr)


def _override_items(overrides: Mapping[str, Any] | Sequence[str]) -> list[str]:
    if isinstance(overrides, Mapping):
        return [f"{key}={value}" for key, value in overrides.items()]
    return [str(item) for item in overrides]


def train(
    task: str | int,
    fold: int | str = 0,
    *,
    configuration: str = "3d_fullres",
    network: str | None = None,
    trainer: str | None = None,
    loss: str | None = None,
    plans: str = "segforgePlans",
    epochs: int | None = None,
    iterations_per_epoch: int | None = None,
    time_budget_min: float | None = None,
    device: str = "auto",
    resume: bool = False,
    fp32: bool = False,
    deterministic: bool = False,
    overrides: Mapping[str, Any] | Sequence[str] = (),
    save_probabilities: bool = False,
) -> TrainingResult:
    """Train (or with ``resume=True`` continue) one fold, as ``segforge train`` does; returns its result.

    ``overrides`` are the ``--set KEY=VALUE`` items, as a mapping (``{"val_iterations": 2}``) or
    strings. The run lands in ``<results>/<dataset>/<configuration>/<trainer>__<network>__<plans>/fold_<fold>``.
    """
    from segforge.training.api import train as train_request
    from segforge.training.run_setup import RunRequest

    request = RunRequest(
        task=str(task), fold=fold, configuration=configuration, network=network, trainer=trainer, loss=loss,
        plans_name=plans, device=device, resume=resume, fp32=fp32, deterministic=deterministic, epochs=epochs,
        iterations_per_epoch=iterations_per_epoch, time_budget_min=time_budget_min,
        overrides=_override_items(overrides), npz=save_probabilities,
    )  # fmt: skip
    return train_request(request)


def evaluate(
    reference: PathLike,
    prediction: PathLike,
    labels: Sequence[int],
    *,
    output_file: PathLike | None = None,
    num_processes: int = 1,
) -> EvaluationSummary:
    """Dice, IoU, HD95... per case and label for two folders of segmentations (``segforge evaluate``).

    Returns the summary (``summary.foreground_mean["dice"]``, ``summary.mean["1"]["dice"]``, ...);
    writes it as JSON to ``output_file`` when given.
    """
    from pathlib import Path

    from segforge.evaluation.evaluate_folder import evaluate_folder, reader_for_folder

    image_io = reader_for_folder(Path(reference))
    return evaluate_folder(reference, prediction, list(labels), num_processes=num_processes, output_file=output_file,
                           image_io=image_io)  # fmt: skip
