"""The plan-and-preprocess sequence (verify -> fingerprint -> plans -> preprocessed data), one for all callers.

``segforge plan-and-preprocess``, ``segforge plan``/``fingerprint`` and
:func:`segforge.api.plan_and_preprocess` run these steps; they differ only in how they show
what happens, so every step reports through a ``report(text)`` callable (the CLI renders it on
stderr, the Python API prints it) instead of importing a renderer. Each step is resumable as
its parts are: the fingerprint is reused while the raw data is unchanged, identical plans are
kept, preprocessed cases that are complete are skipped.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segforge.errors import ConfigError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from segforge.config.fingerprint import Fingerprint
    from segforge.config.plans import Plans
    from segforge.io.layouts import RawDataset

Report = Callable[[str], None]
#: what plan-and-preprocess preprocesses when no configurations are named (as nnU-Net)
DEFAULT_PP_CONFIGS = ("2d", "3d_fullres", "3d_lowres")
#: plans made by another segforge or plugin version with the same decisions are kept as they are
VERSION_FIELDS = {"segforge_version", "plugins"}


def default_workers() -> int:
    """Worker processes when none are asked for: the cores, at most 8 (nnU-Net's default)."""
    return max(1, min(8, os.cpu_count() or 1))


def check_config_names(names: Sequence[str]) -> list[str]:
    """``names``, or a one-line UsageError for the first unknown configuration (before any work is done)."""
    from segforge.config.plans import CONFIGURATION_NAMES

    for name in names:
        if name not in CONFIGURATION_NAMES:
            raise UsageError(
                f"unknown configuration '{name}' (known: {', '.join(CONFIGURATION_NAMES)})",
                hint="choose from 2d, 3d_fullres, 3d_lowres, 3d_cascade_fullres",
            )
    return list(names)


def check_components(planner: str, network: str) -> None:
    """Unknown planner or network names fail before any data is read (with did-you-mean)."""
    from segforge.plugins import get_registries

    registries = get_registries()
    registries.planner.get(planner)
    registries.network.get(network)


def open_task(task: str) -> RawDataset:
    from segforge.io.layouts import open_raw_dataset, resolve_task

    return open_raw_dataset(resolve_task(task))


def verify_step(raw: RawDataset, workers: int, report: Report, show_problems: Callable[[Any], None] | None) -> None:
    """The dataset integrity check; problems are shown (when a caller can) and the first one raised."""
    from segforge.io.verify import verify_dataset

    result = verify_dataset(raw, num_processes=workers, show_progress=show_problems is not None)
    if show_problems is not None:
        show_problems(result)
    result.raise_for_errors()
    report(result.summary())


def fingerprint_step(raw: RawDataset, workers: int, overwrite: bool, report: Report) -> Fingerprint:
    from segforge.planning.fingerprint import ensure_fingerprint, fingerprint_path

    fingerprint, reused = ensure_fingerprint(raw, num_processes=workers, overwrite=overwrite)
    report(
        f"{'reused' if reused else 'wrote'} fingerprint {fingerprint_path(raw.name)} ({fingerprint.num_cases} cases)"
    )
    return fingerprint


def plan_step(
    raw: RawDataset, fingerprint: Fingerprint, *, planner: str, network: str, configs: list[str] | None,
    gpu_memory_gb: float | None, overwrite: bool, network_params: dict[str, Any] | None = None,
    report: Report, warn: Report,
) -> tuple[Plans, Path]:  # fmt: skip
    """Plan, then write the plans (or keep identical existing ones); returns the plans and their file."""
    from segforge.planning.experiment import plan_experiment, plans_path
    from segforge.planning.label_plans import with_label_scheme

    params: dict[str, Any] = {"gpu_memory_gb": gpu_memory_gb} if gpu_memory_gb is not None else {}
    if network_params:
        params["network_params"] = dict(network_params)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plans = plan_experiment(
            fingerprint, planner=planner, network=network, params=params or None, configurations=configs
        )
    plans = with_label_scheme(plans, raw.dataset_json)
    for w in caught:
        warn(f"warning: {w.message}")
    path = plans_path(raw.name, plans.plans_name)
    report(f"{write_plans(plans, path, overwrite)} plans {path}")
    return plans, path


def write_plans(plans: Plans, path: Path, overwrite: bool) -> str:
    """Save ``plans`` unless an equal file exists; a different one needs ``overwrite``.

    Equal means the same decisions: a file written by another segforge or plugin version is
    kept untouched when nothing else differs, so upgrading does not invalidate preprocessed data.
    """
    from segforge.planning.experiment import load_plans, save_plans

    if path.is_file() and not overwrite:
        old = load_plans(path).model_dump(mode="json", exclude=VERSION_FIELDS)
        where = first_difference(old, plans.model_dump(mode="json", exclude=VERSION_FIELDS))
        if where is None:
            return "kept identical"
        raise ConfigError(
            f"{path} exists and differs from the new plans (at {where})",
            hint="pass --overwrite-plans to replace it (preprocessed data made with it will be redone)",
        )
    save_plans(plans, path)
    return "wrote"


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """The JSON path of the first difference between two JSON-like values, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            if key not in a or key not in b:
                return f"{path}.{key}".lstrip(".")
            found = first_difference(a[key], b[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = first_difference(x, y, f"{path}.{i}")
            if found:
                return found
        return None
    return None if a == b else (path.lstrip(".") or "<root>")


def preprocess_step(
    raw: RawDataset, plans: Plans, configs: Sequence[str], lowres_workers: int, full_workers: int, report: Report,
    quiet_skips: bool = False,
) -> None:  # fmt: skip
    """Preprocess ``configs``; 3d_lowres with ``-tl`` workers, the others with ``-tf`` (nnU-Net's split)."""
    from segforge.preprocessing.dataset_runner import preprocess_dataset
    from segforge.settings import get_folders

    names = [c for c in configs if c in plans.configurations]
    skipped = [c for c in configs if c not in plans.configurations]
    if skipped and not quiet_skips:
        report(f"not preprocessing {', '.join(skipped)}: not in the plans for this dataset")
    groups = [names] if lowres_workers == full_workers else [
        [n for n in names if n == "3d_lowres"], [n for n in names if n != "3d_lowres"]
    ]  # fmt: skip
    root = get_folders().preprocessed.path
    for group in filter(None, groups):
        workers = lowres_workers if group == ["3d_lowres"] else full_workers
        summary = preprocess_dataset(raw, plans, group, root, workers)
        report(
            f"preprocessed {', '.join(group)}: {summary.done} case(s) done, {summary.skipped} already complete "
            f"({summary.seconds:.1f} s) in {summary.folder}"
        )


def plan_and_preprocess(
    task: str, *, configs: Sequence[str] | None = None, verify: bool = False, preprocess: bool = True,
    planner: str = "default", network: str = "generic_unet", network_params: dict[str, Any] | None = None,
    workers: int = 1, lowres_workers: int | None = None, full_workers: int | None = None,
    gpu_memory_gb: float | None = None, overwrite_plans: bool = False, clean: bool = False,
    report: Report = lambda text: None, warn: Report | None = None, show_problems: Callable[[Any], None] | None = None,
    show_plans: Callable[[Plans], None] | None = None,
) -> Plans:  # fmt: skip
    """Verify (optional), fingerprint, plan every configuration, preprocess ``configs`` (default: 2d, 3d_fullres,
    3d_lowres where planned); what ``segforge plan-and-preprocess`` and ``segforge.api.plan_and_preprocess`` run."""
    names = check_config_names(list(configs) if configs else list(DEFAULT_PP_CONFIGS))
    check_components(planner, network)
    raw = open_task(task)
    if verify:
        verify_step(raw, workers, report, show_problems)
    fingerprint = fingerprint_step(raw, workers, overwrite=clean, report=report)
    plans, _ = plan_step(
        raw, fingerprint, planner=planner, network=network, configs=None, gpu_memory_gb=gpu_memory_gb,
        overwrite=overwrite_plans, network_params=network_params, report=report, warn=warn or report,
    )  # fmt: skip
    if show_plans is not None:
        show_plans(plans)
    if preprocess:
        low = lowres_workers if lowres_workers is not None else workers
        full = full_workers if full_workers is not None else workers
        preprocess_step(raw, plans, names, low, full, report, quiet_skips=not configs)
    return plans
