"""Turn an exception raised inside a plugin's component into a one-line error naming the plugin.

A component's own code (a network builder's ``propose``/``estimate_memory``/``build`` or its
module's ``forward``) runs deep inside segforge's pipeline. When it raises, the traceback
would point at segforge; the user needs to know which plugin and distribution to fix,
disable or report. Builtin components are segforge's own code: their exceptions are left
alone so that segforge's bugs keep their tracebacks (``SEGFORGE_DEBUG=1``).
"""

from __future__ import annotations

from typing import Any

from segforge.errors import PluginError, SegforgeError


def component_origin(kind: str, component: Any) -> Any:
    """The :class:`segforge.registry.Origin` of a registered component, or None when it is not registered."""
    from segforge.plugins import get_manager

    name = getattr(component, "name", None)
    try:
        entry = get_manager().registries[kind].entry(name)
    except (SegforgeError, KeyError, TypeError):
        return None
    return entry.origin if entry.component is component else None


def is_resource_error(exc: BaseException) -> bool:
    """Out-of-memory errors are the machine's, not the plugin's: let their own handlers see them."""
    return type(exc).__name__ in ("OutOfMemoryError", "MemoryError") or "out of memory" in str(exc).lower()


def component_failure(kind: str, component: Any, during: str, exc: BaseException, origin: Any = None) -> PluginError:
    """``<kind> 'name' from plugin 'p' (dist version): <during> raised Type: message`` with a hint."""
    origin = origin if origin is not None else component_origin(kind, component)
    who = origin.describe() if origin is not None else "an unregistered component"
    reason = " ".join(str(exc).split())[:300]
    fix = f"fix or uninstall {origin.dist}" if origin is not None and origin.dist else "fix the plugin"
    disable = f"SEGFORGE_DISABLE_PLUGINS={origin.plugin}, " if origin is not None else ""
    return PluginError(
        f"{kind} '{getattr(component, 'name', '?')}' from {who}: {during} raised {type(exc).__name__}: {reason}",
        hint=f"choose another {kind}, {disable}or {fix} (SEGFORGE_DEBUG=1 shows the traceback)",
    )


def should_wrap(exc: BaseException, origin: Any) -> bool:
    """True for a registered plugin's own failure (not segforge's errors, out-of-memory, or a builtin)."""
    if isinstance(exc, SegforgeError) or is_resource_error(exc):
        return False
    return origin is not None and not origin.builtin
