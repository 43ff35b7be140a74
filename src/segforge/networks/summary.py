"""A short, human-readable line about a planned network, for tables such as ``segforge plan``'s.

Networks differ in what says most about them: a U-Net's number of stages, a Swin U-Net's
depths, heads and windows. A builder may define ``describe(params) -> str`` to say it itself;
otherwise the U-Net convention (``strides``: one entry per stage) or the first few short
params are shown, so a plugin network never shows as a bare "-".
"""

from __future__ import annotations

from typing import Any

#: at most this many params in the fallback summary (a table cell, not a dump)
MAX_FALLBACK_FIELDS = 3
#: params whose JSON text is longer than this are left out of the fallback summary
MAX_FIELD_TEXT = 24


def describe_network(name: str, params: dict[str, Any], registries: Any = None) -> str:
    """The builder's ``describe(params)`` when it has one, else :func:`fallback_summary`."""
    if registries is None:
        from segforge.plugins import get_registries

        registries = get_registries()
    builder = registries.network.get(name) if name in registries.network else None
    describe = getattr(builder, "describe", None)
    if callable(describe):
        try:
            return str(describe(builder.parse_params(params)))
        except Exception:  # noqa: BLE001 - a plugin's summary must never break planning
            pass
    return fallback_summary(params)


def fallback_summary(params: dict[str, Any]) -> str:
    """``N stages`` for U-Net style params (``strides``), else up to three short ``key=value`` pairs."""
    strides = params.get("strides")
    if isinstance(strides, list) and strides:
        return f"{len(strides)} stages"
    pairs = []
    for key, value in params.items():
        text = _short(value)
        if text is not None and len(text) <= MAX_FIELD_TEXT:
            pairs.append(f"{key}={text}")
        if len(pairs) == MAX_FALLBACK_FIELDS:
            break
    return ", ".join(pairs) or "-"


def _short(value: Any) -> str | None:
    """Numbers, strings and flat lists of numbers as compact text; anything nested is skipped."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float, str)):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
        return "x".join(f"{v:g}" for v in value)
    return None
