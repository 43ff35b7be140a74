"""Which trained run ``segforge predict --task N`` means when only some of its options are given.

Training names a run folder ``<trainer>__<network>__<plans>``, filling what the user left out:
the trainer is the network's recommended one (``swin_adamw`` for ``swin_unet``) or ``default``,
and the plans may be a variant (``segforgePlans__swin_unet``). Prediction resolves the same
defaults first, so ``predict --network swin_unet`` finds ``swin_adamw__swin_unet__...`` without
``--trainer``. When the defaults match nothing, the options the user did give are matched
alone: one run is used, several are an error listing them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segforge.errors import UsageError


@dataclass(frozen=True)
class TrainedRun:
    """One ``<trainer>__<network>__<plans>`` folder of a configuration."""

    trainer: str
    network: str
    plans: str
    folder: Path

    @classmethod
    def parse(cls, folder: Path) -> TrainedRun | None:
        """The run a folder name describes; None for folders that are not runs."""
        from segforge.artifacts.run_dir import parse_run_folder_name

        parts = parse_run_folder_name(folder.name)
        return cls(*parts, folder) if parts is not None else None


@dataclass(frozen=True)
class RunQuery:
    """What the user gave (None = not given)."""

    configuration: str
    trainer: str | None = None
    network: str | None = None
    plans: str | None = None

    def matches(self, run: TrainedRun) -> bool:
        """Every option that was given is the run's."""
        return all(
            given is None or given == have
            for given, have in ((self.trainer, run.trainer), (self.network, run.network), (self.plans, run.plans))
        )


def default_trainer(network: str, registries: Any = None) -> str:
    """The trainer ``segforge train --network NETWORK`` uses without ``--trainer``.

    A network that is not installed (its plugin was removed) gives ``default``: the run is then
    found by its other options, and loading it reports the missing plugin.
    """
    if registries is None:
        from segforge.plugins import get_registries

        registries = get_registries()
    if network not in registries.network:
        return "default"
    return getattr(registries.network.get(network), "recommended_trainer", None) or "default"


def defaults_of(query: RunQuery, registries: Any = None) -> RunQuery:
    """``query`` with the options training would have filled in: generic_unet, its trainer, its plans."""
    from segforge.planning.experiment import DEFAULT_NETWORK, plans_name_for

    network = query.network or DEFAULT_NETWORK
    return RunQuery(
        configuration=query.configuration,
        trainer=query.trainer or default_trainer(network, registries),
        network=network,
        plans=query.plans or plans_name_for(network),
    )


def trained_runs(config_dir: Path) -> list[TrainedRun]:
    """Every run folder of one configuration, sorted by name."""
    if not config_dir.is_dir():
        return []
    runs = (TrainedRun.parse(p) for p in sorted(config_dir.iterdir()) if p.is_dir())
    return [r for r in runs if r is not None]


def choose_run(config_dir: Path, query: RunQuery, registries: Any = None) -> Path:
    """The run folder ``query`` means (see the module docstring); UsageError naming what exists."""
    runs = trained_runs(config_dir)
    preferred = [r for r in runs if defaults_of(query, registries).matches(r)]
    if len(preferred) == 1:
        return preferred[0].folder
    candidates = [r for r in runs if query.matches(r)]
    if len(candidates) == 1:
        return candidates[0].folder
    names = ", ".join(r.folder.name for r in (candidates or runs)) or "nothing"
    if len(candidates) > 1:
        raise UsageError(
            f"{len(candidates)} trained models in {config_dir} match: {names}",
            hint="choose one with --trainer/--network/--plans (or -m RUN_FOLDER)",
        )
    others = [c for c in trained_configurations(config_dir.parent) if c != config_dir.name] if not runs else []
    hint = "choose --config/--trainer/--network/--plans matching a trained model, or train it first"
    if others:  # e.g. a --time-budget run that chose 2d instead of 3d_fullres
        hint = f"this task has trained models for --config {' / '.join(others)}; pass it, or train {config_dir.name}"
    raise UsageError(f"no trained model in {config_dir} matches {describe(query)} (trained here: {names})", hint=hint)


def trained_configurations(dataset_dir: Path) -> list[str]:
    """The configurations of a task's results folder that hold at least one trained run."""
    if not dataset_dir.is_dir():
        return []
    return sorted(p.name for p in dataset_dir.iterdir() if p.is_dir() and trained_runs(p))


def describe(query: RunQuery) -> str:
    """``--network swin_unet --trainer x`` as the options given, for messages."""
    given = [f"--{flag} {value}" for flag, value in (("trainer", query.trainer), ("network", query.network),
                                                     ("plans", query.plans)) if value]  # fmt: skip
    return " ".join(given) or "the defaults"
