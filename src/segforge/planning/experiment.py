"""The planning API the CLI and training use: plans names, where plans live, plan, re-derive, load, save.

Plans live beside the preprocessed data, as in nnU-Net: ``<preprocessed>/<dataset>/<plans_name>.json``.
The plans name says which network they were made for: ``segforgePlans`` for the default
``generic_unet``, ``segforgePlans__<network>`` for any other, so plans for several networks
coexist. Plans re-derived for another network keep the original's data identifiers, so they
reuse its preprocessed data.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from segforge.config.fingerprint import Fingerprint
from segforge.config.jsonio import load_model, save_model
from segforge.config.plans import CONFIGURATION_NAMES, Plans
from segforge.errors import ConfigError, UsageError

DEFAULT_PLANNER = "default"
DEFAULT_NETWORK = "generic_unet"
BASE_PLANS_NAME = "segforgePlans"


def plans_name_for(network: str) -> str:
    """``segforgePlans`` for generic_unet, ``segforgePlans__<network>`` for any other network."""
    return BASE_PLANS_NAME if network == DEFAULT_NETWORK else f"{BASE_PLANS_NAME}__{network}"


def plans_path(dataset_name: str, plans_name: str, preprocessed_root: Path | None = None) -> Path:
    """``<preprocessed>/<dataset>/<plans_name>.json``."""
    if preprocessed_root is None:
        from segforge.settings import get_folders

        preprocessed_root = get_folders().preprocessed.path
    return Path(preprocessed_root) / dataset_name / f"{plans_name}.json"


def load_plans(path: str | Path) -> Plans:
    """Read and validate a plans file; a missing or hand-broken file is a one-line ConfigError naming the field."""
    return load_model(path, Plans, hint="fix the value or re-create the plans with `segforge plan --overwrite-plans`")


def save_plans(plans: Plans, path: str | Path) -> None:
    """Write plans atomically as indented JSON."""
    save_model(path, plans)


def get_planner(name: str, registries: Any = None) -> Any:
    """The registered planner component ``name`` (unknown names list the installed ones)."""
    if registries is None:
        from segforge.plugins import get_registries

        registries = get_registries()
    return registries.planner.get(name)


def plan_experiment(
    fingerprint: Fingerprint,
    *,
    planner: str = DEFAULT_PLANNER,
    network: str = DEFAULT_NETWORK,
    plans_name: str | None = None,
    params: dict[str, Any] | None = None,
    configurations: Iterable[str] | None = None,
    registries: Any = None,
) -> Plans:
    """Plans for ``fingerprint`` made by the planner component ``planner`` for ``network``."""
    if registries is None:
        from segforge.plugins import get_registries

        registries = get_registries()
    component = registries.planner.get(planner)
    registries.network.get(network)  # unknown network: fail before any work, with did-you-mean
    plans = component.plan(
        fingerprint,
        network=network,
        plans_name=plans_name or plans_name_for(network),
        params=params,
        registries=registries,
    )
    return select_configurations(plans, configurations) if configurations is not None else plans


def rederive_plans(
    plans: Plans,
    fingerprint: Fingerprint,
    network_name: str,
    *,
    plans_name: str | None = None,
    registries: Any = None,
) -> Plans:
    """``plans`` re-planned for ``network_name``: topology, patch and batch change; spacing,
    transposition, normalization and data identifiers stay (so preprocessed data is reused).

    The planner that made ``plans`` does the work when it is installed and can re-derive;
    otherwise the default planner does. The result is named ``plans_name_for(network_name)``.
    """
    if registries is None:
        from segforge.plugins import get_registries

        registries = get_registries()
    registries.network.get(network_name)
    component = registries.planner.get(plans.planner) if plans.planner in registries.planner else None
    if component is None or not hasattr(component, "rederive"):
        component = registries.planner.get(DEFAULT_PLANNER)
    return component.rederive(
        plans,
        fingerprint,
        network=network_name,
        plans_name=plans_name or plans_name_for(network_name),
        registries=registries,
    )


def plans_for_network(
    dataset_name: str,
    network: str,
    *,
    base_plans_name: str = BASE_PLANS_NAME,
    preprocessed_root: Path | None = None,
    registries: Any = None,
) -> Plans:
    """The plans for ``network`` (what ``train --network`` needs): loaded when they exist, else
    re-derived from ``base_plans_name`` and the stored fingerprint and saved as ``plans_name_for(network)``.
    """
    from segforge.planning.fingerprint import fingerprint_path, load_fingerprint

    target = plans_path(dataset_name, plans_name_for(network), preprocessed_root)
    if target.is_file():
        return load_plans(target)
    base = plans_path(dataset_name, base_plans_name, preprocessed_root)
    if not base.is_file():
        raise ConfigError(
            f"no plans for {dataset_name}: {base} does not exist",
            hint=f"run `segforge plan-and-preprocess --task {dataset_name}` first",
        )
    fingerprint = load_fingerprint(fingerprint_path(dataset_name, preprocessed_root))
    plans = rederive_plans(load_plans(base), fingerprint, network, registries=registries)
    save_plans(plans, target)
    return plans


def select_configurations(plans: Plans, names: Iterable[str]) -> Plans:
    """``plans`` with only the configurations ``names`` (dangling cascade links removed)."""
    wanted = list(dict.fromkeys(names))
    unknown = [n for n in wanted if n not in CONFIGURATION_NAMES]
    if unknown:
        raise UsageError(
            f"unknown configuration '{unknown[0]}' (known: {', '.join(CONFIGURATION_NAMES)})",
            hint="choose from 2d, 3d_fullres, 3d_lowres, 3d_cascade_fullres",
        )
    kept = {k: c for k, c in plans.configurations.items() if k in wanted}
    if "3d_cascade_fullres" in kept and "3d_lowres" not in kept:
        del kept["3d_cascade_fullres"]
    if not kept:
        raise ConfigError(
            f"none of the configurations {', '.join(wanted)} apply to {plans.dataset_name} "
            f"(planned: {', '.join(plans.configurations)})",
            hint="2D data gets only the 2d configuration; 3d_lowres only for large images",
        )
    fixed = {}
    for key, conf in kept.items():
        if conf.next_stage is not None and conf.next_stage not in kept:
            conf = conf.model_copy(update={"next_stage": None})
        fixed[key] = conf
    return plans.model_copy(update={"configurations": fixed})


def same_plan(a: Plans, b: Plans) -> bool:
    """True when two plans are equal in content (the files would be identical)."""
    return a.model_dump(mode="json") == b.model_dump(mode="json")
