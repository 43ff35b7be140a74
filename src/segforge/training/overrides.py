"""``--set key=value``: change trainer or loss params from the command line, validated at once.

Keys are dotted paths into the trainer's Params (``epochs``, ``augmentation.p_rot``,
``budget.batch_size``); ``loss.KEY`` addresses the selected loss's Params. Values are read as
JSON when they parse (``3``, ``0.5``, ``true``, ``null``, ``[1, 2]``) and as text otherwise.
A misspelled key or a wrong type is a one-line ConfigError naming the key and the valid ones.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ValidationError

from segforge.errors import ConfigError, UsageError

LOSS_PREFIX = "loss."


def parse_value(text: str) -> Any:
    """JSON when it parses (numbers, booleans, null, lists, objects); ``None``/``none`` too; else the text."""
    if text in ("None", "none"):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def split_assignment(item: str) -> tuple[str, Any]:
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UsageError(f"--set '{item}' is not KEY=VALUE", hint="e.g. --set initial_lr=0.02 --set loss.weight_ce=2")
    return key, parse_value(value.strip())


def _unknown_key(key: str, part: str, model: type[BaseModel], what: str) -> ConfigError:
    valid = list(model.model_fields)
    close = difflib.get_close_matches(part, valid, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return ConfigError(
        f"--set {key}: unknown {what} param '{part}' (valid: {', '.join(valid)})",
        hint=hint + "`segforge components show trainer NAME` lists the params",
    )


def _nested_model(model: type[BaseModel], field: str) -> type[BaseModel] | None:
    annotation = model.model_fields[field].annotation
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _check_path(key: str, model: type[BaseModel], what: str) -> None:
    """Every part of ``key`` must name a field; only pydantic sub-models and dicts can be entered."""
    parts = key.split(".")
    current: type[BaseModel] | None = model
    for i, part in enumerate(parts):
        if current is None:
            return  # inside a free-form dict field (e.g. loss_params)
        if part not in current.model_fields:
            raise _unknown_key(key, part, current, what)
        nested = _nested_model(current, part)
        if nested is None and i < len(parts) - 1 and "dict" not in str(current.model_fields[part].annotation):
            raise ConfigError(f"--set {key}: '{part}' has no sub-keys", hint=f"use --set {part}=VALUE")
        current = nested


def _assign(target: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    for part in parts[:-1]:
        existing = target.get(part)
        if not isinstance(existing, dict):
            existing = {}
            target[part] = existing
        target = existing
    target[parts[-1]] = value


def apply_overrides(
    model: type[BaseModel], base: BaseModel | dict[str, Any], items: Iterable[str], what: str = "trainer"
) -> tuple[BaseModel, dict[str, Any]]:
    """``(validated params, loss param updates)`` after applying ``items`` (``KEY=VALUE`` strings) to ``base``."""
    # only the fields set explicitly travel: a default stays a default (not in ``model_fields_set``), so rules
    # such as "CUDA keeps the planned batch unless budget.batch_size is set" can tell the two apart
    data = base.model_dump(exclude_unset=True) if isinstance(base, BaseModel) else json.loads(json.dumps(base))
    loss_updates: dict[str, Any] = {}
    for item in items:
        key, value = split_assignment(item)
        if key.startswith(LOSS_PREFIX):
            _assign(loss_updates, key[len(LOSS_PREFIX) :], value)
            continue
        _check_path(key, model, what)
        _assign(data, key, value)
    try:
        return model.model_validate(data), loss_updates
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ConfigError(
            f"--set {loc}: {err['msg']} (got {err.get('input')!r})",
            hint="`segforge components show trainer NAME` lists the params and their types",
        ) from None
