"""``segforge fingerprint``, ``segforge plan`` and ``segforge plan-and-preprocess`` (nnU-Net's planning commands).

``fingerprint`` reads the raw dataset once and writes ``<preprocessed>/<task>/fingerprint.json``
(reused while the raw files are unchanged). ``plan`` turns it into
``<preprocessed>/<task>/<plans_name>.json`` with a planner component for a network.
``plan-and-preprocess`` does both and preprocesses, like ``nnUNet_plan_and_preprocess``.
The plans table goes to stdout; progress and notes go to stderr.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from segforge.cli import render
from segforge.planning.workflow import (
    check_components,
    check_config_names,
    default_workers,
    fingerprint_step,
    open_task,
    plan_and_preprocess,
    plan_step,
)

if TYPE_CHECKING:  # pragma: no cover
    from segforge.config.plans import Plans

GIB = 1024**3

TaskOpt = Annotated[str, typer.Option("--task", "-t", help="Task number (4), id (004) or folder name (Task004_X).")]
WorkersOpt = Annotated[
    Optional[int], typer.Option("-np", "--num-processes", help="Worker processes (default: cores, max 8).")
]
PlannerOpt = Annotated[str, typer.Option("--planner", help="Planner component (registry name).")]
NetworkOpt = Annotated[str, typer.Option("--network", help="Network builder the plans are made for.")]
NetworkParamOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--network-param",
        help="KEY=VALUE fixing one of the network's params in every configuration (JSON values; repeatable); "
        "`segforge components show network NAME` lists them.",
    ),
]
GpuOpt = Annotated[
    Optional[float], typer.Option("--gpu-memory-gb", help="Memory budget of one training step in GiB (default 8).")
]
OverwritePlansOpt = Annotated[bool, typer.Option("--overwrite-plans", help="Replace existing plans of this name.")]
OverwriteFpOpt = Annotated[
    bool, typer.Option("--overwrite", "--clean", help="Recompute the fingerprint even if the raw data is unchanged.")
]
CONFIGS_HELP = "Configurations (repeat, comma-separate or list them: --configs 2d 3d_fullres)."


def _workers(value: int | None, flag: str = "-np") -> int:
    from segforge.errors import UsageError

    workers = default_workers() if value is None else value
    if workers < 1:
        raise UsageError(f"{flag} must be at least 1, got {workers}", hint=f"pass {flag} 1 to use one process")
    return workers


def parse_configs(values: list[str] | None, extra: list[str]) -> list[str] | None:
    """``--configs`` values (repeated, comma-separated, or followed by more names as nnU-Net takes them)."""
    from segforge.errors import UsageError

    if extra and values is None:
        raise UsageError(f"unexpected argument '{extra[0]}'", hint="configuration names follow --configs")
    if values is None:
        return None
    names = [n.strip() for v in [*values, *extra] for n in v.split(",") if n.strip()]
    bad = [n for n in names if n.startswith("-")]
    if bad:
        raise UsageError(f"unexpected option '{bad[0]}' among --configs values", hint="see `segforge plan --help`")
    return names


def parse_network_params(items: list[str]) -> dict[str, Any]:
    """``["embed_dim=24", "depths=[2,2]"]`` as a dict (JSON values, plain text otherwise)."""
    from segforge.errors import UsageError
    from segforge.training.overrides import parse_value

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--network-param '{item}' is not KEY=VALUE", hint="e.g. --network-param nonlin=relu")
        out[key.strip()] = parse_value(value.strip())
    return out


def plans_table(plans: Plans, registries: Any = None) -> Any:
    """config, spacing, patch, batch, network and its topology, memory and data identifier per configuration.

    The topology cell comes from the network's builder (``describe(params)``) where it has one,
    so a plugin network shows e.g. its depths and windows, not a U-Net's stage count.
    """
    from segforge.networks.summary import describe_network

    def fmt(values: list[float]) -> str:
        return " x ".join(f"{v:g}" for v in values)

    rows = []
    for name, conf in plans.configurations.items():
        topology = describe_network(conf.network.name, dict(conf.network.params), registries)
        memory = f"{conf.memory_estimate_bytes / GIB:.1f}" if conf.memory_estimate_bytes else "-"
        rows.append(
            (name, fmt(conf.spacing), fmt(conf.patch_size), conf.batch_size, conf.network.name, topology, memory,
             ", ".join(conf.normalization), conf.data_identifier)
        )  # fmt: skip
    columns = ("config", "spacing", "patch", "batch", "network", "topology", "GiB", "norm", "data identifier")
    title = (
        f"{plans.plans_name} for {plans.dataset_name} (planner {plans.planner}, transpose {plans.transpose_forward})"
    )
    return render.table(columns, rows, title=title)


# -- commands -------------------------------------------------------------------------------------
def fingerprint_command(task: TaskOpt, num_processes: WorkersOpt = None, overwrite: OverwriteFpOpt = False) -> None:
    """Extract the dataset fingerprint (spacings, shapes, intensities, label counts) into fingerprint.json."""
    raw = open_task(task)
    fp = fingerprint_step(raw, _workers(num_processes), overwrite, render.message)
    import numpy as np

    rows = [
        ("cases", fp.num_cases),
        ("channels", ", ".join(f"{k}: {v}" for k, v in fp.channel_names.items())),
        ("labels", ", ".join(f"{k}={v}" for k, v in fp.labels.items())),
        ("median spacing", " x ".join(f"{v:g}" for v in np.median(fp.spacings, axis=0))),
        ("median shape after crop", " x ".join(f"{v:g}" for v in np.median(fp.shapes_after_crop, axis=0))),
        ("median size after crop", f"{fp.median_relative_size_after_cropping:.3f}"),
    ]
    for channel, stats in fp.foreground_intensity_properties_per_channel.items():
        rows.append(
            (f"channel {channel} foreground", f"mean {stats.mean:.4g}, std {stats.std:.4g}, "
             f"p0.5 {stats.percentile_00_5:.4g}, p99.5 {stats.percentile_99_5:.4g}")
        )  # fmt: skip
    render.show(render.fields(rows, title=f"fingerprint of {fp.dataset_name}"))


def plan_command(
    ctx: typer.Context,
    task: TaskOpt,
    planner: PlannerOpt = "default",
    network: NetworkOpt = "generic_unet",
    network_param: NetworkParamOpt = None,
    configs: Annotated[Optional[list[str]], typer.Option("--configs", "-c", help=CONFIGS_HELP)] = None,
    gpu_memory_gb: GpuOpt = None,
    overwrite_plans: OverwritePlansOpt = False,
    num_processes: WorkersOpt = None,
) -> None:
    """Plan the experiment: target spacing, patch and batch size, network topology per configuration.

    Extracts the fingerprint first when there is none (or the raw data changed). Plans go to
    <preprocessed>/<task>/segforgePlans.json (segforgePlans__<network>.json for other networks).
    """
    names = parse_configs(configs, list(ctx.args))
    if names is not None:
        check_config_names(names)
    check_components(planner, network)
    raw = open_task(task)
    fp = fingerprint_step(raw, _workers(num_processes), False, render.message)
    plans, _ = plan_step(
        raw, fp, planner=planner, network=network, configs=names, gpu_memory_gb=gpu_memory_gb,
        overwrite=overwrite_plans, network_params=parse_network_params(network_param or []),
        report=render.message, warn=_warn,
    )  # fmt: skip
    render.show(plans_table(plans))


def plan_and_preprocess_command(
    ctx: typer.Context,
    task: TaskOpt,
    verify_dataset_integrity: Annotated[
        bool, typer.Option("--verify-dataset-integrity", help="Check the raw dataset first (nnU-Net's flag).")
    ] = False,
    no_pp: Annotated[bool, typer.Option("--no-pp", help="Only fingerprint and plan; do not preprocess.")] = False,
    planner: PlannerOpt = "default",
    network: NetworkOpt = "generic_unet",
    network_param: NetworkParamOpt = None,
    configs: Annotated[
        Optional[list[str]], typer.Option("--configs", "-c", help=CONFIGS_HELP + " Default: 2d 3d_fullres 3d_lowres.")
    ] = None,
    num_processes: WorkersOpt = None,
    tl: Annotated[Optional[int], typer.Option("-tl", help="Workers preprocessing 3d_lowres (default: -np).")] = None,
    tf: Annotated[Optional[int], typer.Option("-tf", help="Workers preprocessing the others (default: -np).")] = None,
    gpu_memory_gb: GpuOpt = None,
    overwrite_plans: OverwritePlansOpt = False,
    clean: Annotated[bool, typer.Option("--clean", help="Recompute the fingerprint even if unchanged.")] = False,
) -> None:
    """Fingerprint, plan and preprocess a raw dataset (nnUNet_plan_and_preprocess); re-running resumes.

    Every configuration is planned; --configs chooses which are preprocessed.
    """
    from segforge.cli.verify_cmd import print_problems

    requested = parse_configs(configs, list(ctx.args))
    workers = _workers(num_processes)
    plan_and_preprocess(
        task, configs=requested, verify=verify_dataset_integrity, preprocess=not no_pp, planner=planner,
        network=network, network_params=parse_network_params(network_param or []), workers=workers,
        lowres_workers=_workers(tl if tl is not None else workers, "-tl"),
        full_workers=_workers(tf if tf is not None else workers, "-tf"), gpu_memory_gb=gpu_memory_gb,
        overwrite_plans=overwrite_plans, clean=clean, report=render.message, warn=_warn,
        show_problems=print_problems, show_plans=lambda plans: render.show(plans_table(plans)),
    )  # fmt: skip


def _warn(text: str) -> None:
    render.message(text, style="yellow")


EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": False}


def register(app: typer.Typer) -> None:
    app.command("fingerprint")(fingerprint_command)
    app.command("plan", context_settings=EXTRA_ARGS)(plan_command)
    app.command("plan-and-preprocess", context_settings=EXTRA_ARGS)(plan_and_preprocess_command)
