"""Typed component registries that remember where each component came from.

There is one :class:`ComponentRegistry` per component kind (network, trainer, loss, ...).
Plugins never touch them directly: a registrar hook receives a :class:`RegistrarView` bound
to one plugin, so each ``add`` records the plugin's name, distribution and version. Adds are
staged and committed only when the plugin's hook returns without raising, so a plugin that
fails half-way leaves nothing behind.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from segforge.errors import ComponentNotFoundError, ConfigError, DuplicateComponentError, PluginError

#: Component kinds, their registrar hook and the attributes each component must have.
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "network": (
        "segforge_register_networks",
        ("name", "version", "Params", "dims", "constraints", "propose", "build", "estimate_memory"),
    ),
    "trainer": ("segforge_register_trainers", ("name", "version", "Params")),
    "loss": ("segforge_register_losses", ("name", "version", "Params", "build")),
    "planner": ("segforge_register_planners", ("name", "version", "Params")),
    "normalization": ("segforge_register_normalizations", ("name", "version", "Params")),
    "image_io": ("segforge_register_image_io", ("name", "version", "Params", "file_endings")),
    "callback": ("segforge_register_callbacks", ("name", "version", "Params")),
}

if TYPE_CHECKING:
    from pydantic import BaseModel

M = TypeVar("M", bound="BaseModel")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_.-]*$")


@dataclass(frozen=True)
class Origin:
    """Where a component (or a plugin) comes from."""

    plugin: str
    dist: str | None = None
    version: str | None = None
    builtin: bool = False

    def describe(self) -> str:
        if self.builtin:
            return f"builtin plugin '{self.plugin}' (segforge {self.version})"
        dist = f"{self.dist} {self.version}" if self.dist else "no distribution"
        return f"plugin '{self.plugin}' ({dist})"

    def as_dict(self) -> dict[str, Any]:
        return {"plugin": self.plugin, "dist": self.dist, "version": self.version, "builtin": self.builtin}


@dataclass(frozen=True)
class Entry:
    """A registered component with its kind, name and origin."""

    kind: str
    name: str
    component: Any
    origin: Origin

    @property
    def version(self) -> str:
        return str(getattr(self.component, "version", ""))

    @property
    def doc(self) -> str:
        """The component's own docstring (its class's for an instance), dedented; never an inherited one."""
        return inspect.cleandoc(getattr(self.component, "__doc__", None) or "")

    @property
    def summary(self) -> str:
        doc = self.doc
        return doc.splitlines()[0] if doc else ""


class ComponentRegistry:
    """All components of one kind, by name."""

    def __init__(self, kind: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown component kind {kind!r}")
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def __len__(self) -> int:
        return len(self._entries)

    def names(self, pattern: str | None = None) -> list[str]:
        """Sorted names, optionally filtered by a shell-style wildcard (``"*unet"``)."""
        names = sorted(self._entries)
        return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names

    def entry(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise self._not_found(name) from None

    def get(self, name: str) -> Any:
        """The component registered under ``name``; unknown names suggest the nearest."""
        return self.entry(name).component

    def _not_found(self, name: str) -> ComponentNotFoundError:
        available = ", ".join(self.names()) or "none"
        close = difflib.get_close_matches(name, self.names(), n=1, cutoff=0.5)
        hint = f"did you mean '{close[0]}'? " if close else ""
        hint += f"`segforge components list --kind {self.kind}` shows what is installed"
        return ComponentNotFoundError(f"unknown {self.kind} '{name}' (available: {available})", hint=hint)

    def _commit(self, entry: Entry) -> None:
        other = self._entries.get(entry.name)
        if other is not None:
            err = DuplicateComponentError(
                f"{entry.kind} '{entry.name}' is registered twice: by {other.origin.describe()} "
                f"and by {entry.origin.describe()}",
                hint=f"uninstall one of them or disable it with `-p no:{entry.origin.plugin}` "
                f"or SEGFORGE_DISABLE_PLUGINS={entry.origin.plugin}",
            )
            # structured copy for `segforge plugins list/show` (the message is for people)
            err.kind, err.name, err.origins = entry.kind, entry.name, (other.origin, entry.origin)
            raise err
        self._entries[entry.name] = entry


def validate_component(kind: str, component: Any, name: str | None, origin: Origin) -> str:
    """Check the attributes a component of ``kind`` must have; raise PluginError otherwise.

    Returns the valid name. Missing attributes are reported before a bad name: a component without ``name`` would
    otherwise be reported as "invalid name None", which hides the real problem.
    """
    missing = [attr for attr in KINDS[kind][1] if not hasattr(component, attr)]
    if missing:
        label = name if isinstance(name, str) else type(component).__name__
        raise PluginError(
            f"{origin.describe()} registered {kind} '{label}' without {', '.join(missing)}",
            hint=f"see docs/plugins/writing.md for what a {kind} component must provide",
        )
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise PluginError(
            f"{origin.describe()} registered a {kind} with invalid name {name!r}",
            hint="component names are lower case letters, digits, '_', '-' or '.', starting with a letter",
        )
    return name


def parse_component_params(kind: str, name: str, model: type[M], params: Any) -> M:
    """Validate ``params`` (a dict from JSON) into a component's ``model``: one-line ConfigError otherwise.

    Every component with Params reports a bad value the same way, naming the component and
    the field, and points at ``segforge components show`` for the valid params.
    """
    from pydantic import ValidationError

    try:
        return model.model_validate(params)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        raise ConfigError(
            f"{kind} '{name}' params: {loc}: {err['msg']}",
            hint=f"`segforge components show {kind} {name}` lists the valid params",
        ) from None


@dataclass
class RegistrarView:
    """What a registrar hook receives: ``registry.add(component)`` for one kind and one plugin."""

    kind: str
    origin: Origin
    staged: list[Entry] = field(default_factory=list)

    def add(self, component: Any, name: str | None = None) -> Any:
        """Register ``component`` under ``name`` (default ``component.name``); returns it."""
        name = validate_component(
            self.kind, component, name if name is not None else getattr(component, "name", None), self.origin
        )
        if any(e.name == name for e in self.staged):
            raise PluginError(f"{self.origin.describe()} registered {self.kind} '{name}' twice")
        self.staged.append(Entry(self.kind, name, component, self.origin))
        return component


class Registries:
    """One registry per kind: ``registries.network.get("generic_unet")`` or ``registries["loss"]``."""

    def __init__(self) -> None:
        self._by_kind = {kind: ComponentRegistry(kind) for kind in KINDS}

    def __getitem__(self, kind: str) -> ComponentRegistry:
        try:
            return self._by_kind[kind]
        except KeyError:
            close = difflib.get_close_matches(kind, list(KINDS), n=1)
            hint = f"did you mean '{close[0]}'?" if close else None
            raise ComponentNotFoundError(
                f"unknown component kind '{kind}' (kinds: {', '.join(KINDS)})", hint=hint
            ) from None

    def __getattr__(self, kind: str) -> ComponentRegistry:
        if kind.startswith("_"):
            raise AttributeError(kind)
        if kind in KINDS:
            return self._by_kind[kind]
        raise AttributeError(kind)

    def kinds(self) -> list[str]:
        return list(KINDS)

    def entries(self, kind: str | None = None) -> list[Entry]:
        kinds = [kind] if kind else list(KINDS)
        return [e for k in kinds for e in self[k]]
