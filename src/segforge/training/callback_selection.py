"""Which callbacks a run uses and with what params: ``--callback NAME`` and ``--set callback.NAME.KEY=VALUE``.

Decided before the run folder exists, so a misspelled name or key, a wrong type or a callback
whose constructor fails is a one-line error and nothing is written. On ``--continue`` the
checkpoint's selection (names and params) is restored; ``--callback`` adds more and ``--set
callback.NAME.KEY`` changes a restored callback's params.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from segforge.errors import ConfigError, PluginError, SegforgeError
from segforge.training.callbacks import Callbacks, SelectedCallback
from segforge.training.overrides import apply_overrides, split_assignment

CALLBACK_PREFIX = "callback."


def is_callback_item(item: str) -> bool:
    """True for a ``--set`` item addressed to a callback (``callback.NAME.KEY=VALUE``)."""
    return item.strip().startswith(CALLBACK_PREFIX)


def _callback_items(items: Iterable[str], selected: list[str]) -> dict[str, list[str]]:
    """``{name: ["KEY=VALUE", ...]}`` from the ``callback.NAME.KEY=VALUE`` items; NAME must be selected."""
    per_name: dict[str, list[str]] = {}
    for item in items:
        if not is_callback_item(item):
            continue
        key, _ = split_assignment(item)
        name, _, inner = key[len(CALLBACK_PREFIX) :].partition(".")
        if not inner:
            raise ConfigError(
                f"--set {key}: a callback param needs callback.NAME.KEY",
                hint="e.g. --set callback.csv_metrics.file=m.csv",
            )
        if name not in selected:
            chosen = ", ".join(selected) or "none"
            raise ConfigError(
                f"--set {key}: callback '{name}' is not selected for this run (selected: {chosen})",
                hint=f"add --callback {name}",
            )
        value = item.split("=", 1)[1]
        per_name.setdefault(name, []).append(f"{inner}={value}")
    return per_name


def _params(entry: Any, base: dict[str, Any], items: list[str]) -> Any:
    """The callback's Params from ``base`` (stored) plus ``items``; errors name the full ``--set`` key."""
    name = entry.name
    try:
        params, _ = apply_overrides(entry.component.Params, base, items, what=f"callback '{name}'")
    except ConfigError as exc:
        raise ConfigError(
            exc.message.replace("--set ", f"--set {CALLBACK_PREFIX}{name}.", 1),
            hint=f"`segforge components show callback {name}` lists the params",
        ) from None
    return params


def _entry(registries: Any, name: str, restored: bool) -> Any:
    try:
        return registries.callback.entry(name)
    except ConfigError as exc:
        if not restored:
            raise
        raise ConfigError(
            f"this run was started with callback '{name}', which is not installed now ({exc.message})",
            hint="install the plugin that provides it again (`segforge plugins list` shows what is installed)",
        ) from None


def _create(entry: Any, params: Any) -> Any:
    """The live callback object; a failing constructor is a one-line error naming the plugin."""
    try:
        return entry.component(params)
    except SegforgeError:
        raise
    except Exception as exc:
        raise PluginError(
            f"callback '{entry.name}' of {entry.origin.describe()} failed to start: {type(exc).__name__}: {exc}",
            hint=f"check its params (`segforge components show callback {entry.name}`) or run without it",
        ) from None


def select_callbacks(
    names: Iterable[str], items: Iterable[str], stored: list[dict[str, Any]] | None, registries: Any
) -> Callbacks:
    """The run's callbacks: the checkpoint's (``stored``) first, then ``names``, each created with its params."""
    stored_params = {record["name"]: record.get("params") or {} for record in stored or []}
    order = list(dict.fromkeys([*stored_params, *names]))
    per_name = _callback_items(list(items), order)
    selected = []
    for name in order:
        entry = _entry(registries, name, restored=name in stored_params)
        params = _params(entry, stored_params.get(name, {}), per_name.get(name, []))
        selected.append(SelectedCallback(entry, params, _create(entry, params)))
    return Callbacks(selected)
