"""From ``segforge train`` arguments to everything a trainer needs: plans, data, fold, components.

:func:`resolve_run` finds the task's preprocessed folder, loads the plans (re-deriving a plans
variant when ``--network`` differs from the network the plans were made for), checks the
configuration and its preprocessed cases, reads or creates the cross-validation split, and
looks up the trainer, network and loss components by registry name. Every problem is a
one-line SegforgeError with the command that fixes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segforge.config.label_scheme import LabelScheme
from segforge.config.plans import ConfigurationPlan, Plans
from segforge.errors import ConfigError, UsageError
from segforge.registry import Entry


@dataclass
class RunRequest:
    """What the user asked for (the CLI flags, minus presentation)."""

    task: str
    fold: str | int
    configuration: str = "3d_fullres"
    #: False when the user did not choose the configuration: a time budget may then train 2d instead
    configuration_explicit: bool = True
    network: str | None = None
    trainer: str | None = None
    loss: str | None = None
    plans_name: str = "segforgePlans"
    device: str = "auto"
    resume: bool = False
    pretrained_weights: Path | None = None
    fp32: bool = False
    deterministic: bool = False
    epochs: int | None = None
    iterations_per_epoch: int | None = None
    time_budget_min: float | None = None
    overrides: list[str] = field(default_factory=list)
    #: registered callbacks this run selects (``--callback NAME``); see :mod:`segforge.training.callbacks`
    callbacks: list[str] = field(default_factory=list)
    command: list[str] = field(default_factory=list)
    #: seconds the process ran before training was asked for (the CLI's start-up), counted by budgets
    started_ago_s: float = 0.0
    #: end-of-training validation also writes probabilities (CASE.npz + CASE.json), as nnU-Net's --npz
    npz: bool = False


@dataclass
class RunContext:
    """What the request resolved to."""

    request: RunRequest
    dataset_name: str
    dataset_folder: Path
    plans: Plans
    plans_name: str
    configuration: ConfigurationPlan
    data_folder: Path
    train_ids: list[str]
    val_ids: list[str]
    fold: int | str
    network_entry: Entry
    trainer_entry: Entry
    fold_folder: Path
    notes: list[str] = field(default_factory=list)

    @property
    def label_scheme(self) -> LabelScheme:
        """Softmax labels or sigmoid regions, and the ignore label (see :mod:`segforge.config.label_scheme`)."""
        return LabelScheme.from_plans(self.plans)

    @property
    def num_classes(self) -> int:
        """Network output channels: labels without ``ignore``, or one per region."""
        return self.label_scheme.num_outputs

    @property
    def in_channels(self) -> int:
        """Image channels, plus one per foreground label of the previous stage for a cascade."""
        from segforge.training.cascade import previous_stage_channels

        return len(self.configuration.normalization) + previous_stage_channels(self.plans, self.configuration)


def _dataset_folder(task: str, preprocessed_root: Path) -> Path:
    from segforge.io.layouts import resolve_task

    try:
        return resolve_task(task, preprocessed_root)
    except UsageError as exc:
        raise UsageError(
            f"no preprocessed data for task {task}: {exc.message}",
            hint=f"run `segforge plan-and-preprocess --task {task}` first",
        ) from None


def _existing_plans_path(
    dataset_folder: Path, plans_name: str, network: str | None, task: str
) -> tuple[Path, list[str]]:
    """The plans file to start from: ``plans_name``'s, or (default name only) the one variant there is.

    ``segforge plan-and-preprocess --network swin_unet`` writes only ``segforgePlans__swin_unet.json``;
    training that task without ``--plans`` must find it instead of asking for ``segforgePlans.json``.
    """
    from segforge.planning import BASE_PLANS_NAME

    path = dataset_folder / f"{plans_name}.json"
    if path.is_file():
        return path, []
    variants = sorted(p.stem for p in dataset_folder.glob(f"{BASE_PLANS_NAME}__*.json"))
    if plans_name != BASE_PLANS_NAME:  # a name the user chose: no substitute
        variants = []
    wanted = f"{BASE_PLANS_NAME}__{network}" if network else None
    chosen = wanted if wanted in variants else (variants[0] if network is None and len(variants) == 1 else None)
    if chosen is not None:
        note = f"using plans {chosen}: {path.name} does not exist"
        return dataset_folder / f"{chosen}.json", [note]
    if network is None and len(variants) > 1:
        options = ", ".join(v.removeprefix(f"{BASE_PLANS_NAME}__") for v in variants)
        raise ConfigError(
            f"no plans '{plans_name}' for {dataset_folder.name}, but plans for several networks ({options})",
            hint=f"choose one with `segforge train --task {task} --network NAME` (or --plans NAME)",
        )
    flag = f" --network {network}" if network else ""
    other = f" (or re-derive them from existing plans: --plans {variants[0]})" if variants else ""
    raise ConfigError(
        f"no plans '{plans_name}' for {dataset_folder.name}: {path} does not exist",
        hint=f"run `segforge plan-and-preprocess --task {task}{flag}`{other}",
    )


def _plans_for_network(
    dataset_folder: Path, plans_name: str, network: str | None, task: str, registries: Any
) -> tuple[Plans, str, list[str]]:
    """The plans to train with: ``plans_name``'s, or a variant re-derived for ``network`` (saved once)."""
    from segforge.planning import BASE_PLANS_NAME, load_plans, rederive_plans, save_plans

    if network is not None:
        registries.network.get(network)  # a misspelt name: did-you-mean before plans are looked up by it
    path, notes = _existing_plans_path(dataset_folder, plans_name, network, task)
    plans = load_plans(path)
    plans_name = path.stem
    planned = {c.network.name for c in plans.configurations.values()}
    if network is None or planned == {network}:
        return plans, plans_name, notes
    variant = f"{BASE_PLANS_NAME}__{network}" if plans_name == BASE_PLANS_NAME else f"{plans_name}__{network}"
    variant_path = dataset_folder / f"{variant}.json"
    if variant_path.is_file():
        return load_plans(variant_path), variant, [f"using plans variant {variant} for network {network}"]
    from segforge.planning import fingerprint_path, load_fingerprint

    fingerprint = load_fingerprint(fingerprint_path(dataset_folder.name, dataset_folder.parent))
    derived = rederive_plans(plans, fingerprint, network, plans_name=variant, registries=registries)
    save_plans(derived, variant_path)
    return derived, variant, [f"re-derived plans {variant} for network {network} from {plans_name} ({variant_path})"]


def _preprocess_hint(task: str, plans_name: str, conf: ConfigurationPlan) -> str:
    """The exact command that makes the missing data (a plans variant's data folder may not exist yet)."""
    from segforge.planning import BASE_PLANS_NAME

    plans_flag = "" if plans_name == BASE_PLANS_NAME else f" --plans {plans_name}"
    return f"run `segforge preprocess --task {task}{plans_flag} --configs {conf.name}`"


def _preprocessed_cases(plans: Plans, conf: ConfigurationPlan, dataset_folder: Path, task: str) -> tuple[Path, list]:
    from segforge.data.case_store import list_complete_cases
    from segforge.preprocessing.preprocessor import preprocessing_digest

    folder = dataset_folder / conf.data_identifier
    cases = list_complete_cases(folder, preprocessing_digest(plans, conf))
    if not cases:
        raise ConfigError(
            f"no preprocessed cases for configuration {conf.name} in {folder}",
            hint=_preprocess_hint(task, plans.plans_name, conf),
        )
    return folder, cases


def _trainer_entry(name: str | None, network_entry: Entry, registries: Any) -> Entry:
    if name is None:
        name = getattr(network_entry.component, "recommended_trainer", None) or "default"
    return registries.trainer.entry(name)


def resolve_run(request: RunRequest, registries: Any = None) -> RunContext:
    """Resolve ``request``; raises one-line SegforgeErrors for anything missing."""
    from segforge.data.splits import get_fold, parse_fold
    from segforge.settings import get_folders
    from segforge.training.run_dir import fold_folder_name, run_folder

    if registries is None:
        from segforge.plugins import get_registries

        registries = get_registries()
    fold = parse_fold(request.fold)
    folders = get_folders()
    dataset_folder = _dataset_folder(request.task, folders.preprocessed.path)
    plans, plans_name, notes = _plans_for_network(
        dataset_folder, request.plans_name, request.network, request.task, registries
    )
    conf = plans.configuration(request.configuration)
    network_entry = registries.network.entry(conf.network.name)
    trainer_entry = _trainer_entry(request.trainer, network_entry, registries)
    if request.loss is not None:
        registries.loss.get(request.loss)
    data_folder, cases = _preprocessed_cases(plans, conf, dataset_folder, request.task)
    train_ids, val_ids = get_fold(dataset_folder, cases, fold)
    run = run_folder(
        folders.results.path, dataset_folder.name, conf.name, trainer_entry.name, network_entry.name, plans_name
    )
    return RunContext(
        request=request,
        dataset_name=dataset_folder.name,
        dataset_folder=dataset_folder,
        plans=plans,
        plans_name=plans_name,
        configuration=conf,
        data_folder=data_folder,
        train_ids=train_ids,
        val_ids=val_ids,
        fold=fold,
        network_entry=network_entry,
        trainer_entry=trainer_entry,
        fold_folder=run / fold_folder_name(fold),
        notes=notes,
    )
