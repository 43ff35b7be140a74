"""Planning: dataset fingerprint and experiment planners.

``ensure_fingerprint`` reads a raw dataset once (or reuses its fingerprint.json),
``plan_experiment`` turns the fingerprint into plans with a planner component, and
``rederive_plans`` re-plans the network-dependent parts for another network.
"""

from segforge.planning.experiment import (
    BASE_PLANS_NAME,
    DEFAULT_NETWORK,
    DEFAULT_PLANNER,
    load_plans,
    plan_experiment,
    plans_for_network,
    plans_name_for,
    plans_path,
    rederive_plans,
    save_plans,
    select_configurations,
)
from segforge.planning.fingerprint import ensure_fingerprint, extract_fingerprint, fingerprint_path, load_fingerprint

__all__ = [
    "BASE_PLANS_NAME",
    "DEFAULT_NETWORK",
    "DEFAULT_PLANNER",
    "ensure_fingerprint",
    "extract_fingerprint",
    "fingerprint_path",
    "load_fingerprint",
    "load_plans",
    "plan_experiment",
    "plans_for_network",
    "plans_name_for",
    "plans_path",
    "rederive_plans",
    "save_plans",
    "select_configurations",
]
