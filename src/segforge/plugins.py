"""The plugin manager: builtins, entry points, blocking, failures and listing.

Discovery order (as pytest does it): blocked names first (``-p no:NAME`` and
``SEGFORGE_DISABLE_PLUGINS``), then segforge's builtin plugin modules, then modules from the
``segforge`` entry-point group of installed distributions (unless
``SEGFORGE_DISABLE_PLUGIN_AUTOLOAD=1``), then modules named explicitly with ``-p MODULE`` or
``SEGFORGE_PLUGINS``. Builtins go through exactly the same ``register`` path and hooks as
third-party plugins.

A plugin that fails - its import raises, it implements a hook that does not exist, or one of
its hooks raises - is recorded with its name, distribution, version and cause instead of
crashing the program. ``segforge plugins list`` shows it; commands that need components call
:meth:`SegforgeManager.require_ok`, which turns the first problem into a one-line error that
says how to disable the plugin.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import inspect
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Literal

import pluggy

from segforge import hookspecs
from segforge._version import __version__
from segforge.errors import DuplicateComponentError, PluginError
from segforge.registry import KINDS, Origin, RegistrarView, Registries

ENTRY_POINT_GROUP = "segforge"

#: segforge's own plugins: (plugin name, module). They register like any other plugin.
BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("builtin.networks", "segforge.builtins.networks"),
    ("builtin.image_io", "segforge.builtins.image_io"),
    ("builtin.normalizations", "segforge.builtins.normalizations"),
    ("builtin.planners", "segforge.builtins.planners"),
    ("builtin.losses", "segforge.builtins.losses"),
    ("builtin.trainers", "segforge.builtins.trainers"),
    ("builtin.callbacks", "segforge.builtins.callbacks"),
)

Status = Literal["ok", "failed", "blocked"]


@dataclass
class PluginInfo:
    """One plugin as ``segforge plugins list`` shows it."""

    name: str
    module: str | None
    dist: str | None
    version: str | None
    builtin: bool = False
    status: Status = "ok"
    error: str | None = None
    stage: str | None = None
    hooks: list[str] = field(default_factory=list)
    components: list[tuple[str, str]] = field(default_factory=list)

    @property
    def origin(self) -> Origin:
        return Origin(self.name, self.dist, self.version, self.builtin)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "module": self.module,
            "dist": self.dist,
            "version": self.version,
            "builtin": self.builtin,
            "status": self.status,
            "error": self.error,
            "stage": self.stage,
            "hooks": list(self.hooks),
            "components": [{"kind": k, "name": n} for k, n in self.components],
        }


def _split_names(value: str | None) -> list[str]:
    return [n.strip() for n in (value or "").replace(";", ",").split(",") if n.strip()]


def _disable_hint(info: PluginInfo) -> str:
    fix = f"fix or uninstall {info.dist}" if info.dist and not info.builtin else "fix the plugin"
    return f"disable it with SEGFORGE_DISABLE_PLUGINS={info.name} (or `-p no:{info.name}`), or {fix}"


class SegforgeManager:
    """Loads plugins once and fills the component registries, recording every failure."""

    def __init__(
        self,
        *,
        blocked: Iterable[str] = (),
        extra: Iterable[str] = (),
        autoload: bool | None = None,
        builtins: Iterable[tuple[str, str]] = BUILTIN_PLUGINS,
    ) -> None:
        env = os.environ
        self.blocked = set(blocked) | set(_split_names(env.get("SEGFORGE_DISABLE_PLUGINS")))
        self.extra = list(extra) + _split_names(env.get("SEGFORGE_PLUGINS"))
        if autoload is None:
            autoload = env.get("SEGFORGE_DISABLE_PLUGIN_AUTOLOAD", "") in ("", "0")
        self.autoload = autoload
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self.conflicts: list[DuplicateComponentError] = []
        self.registries = Registries()
        for name, module in builtins:
            self._load(PluginInfo(name, module, "segforge", __version__, builtin=True))
        if self.autoload:
            self._load_entry_points()
        for spec in self.extra:
            if any(p.name == spec for p in self.plugins):  # `-p NAME` of an entry point already loaded
                continue
            self._load(PluginInfo(spec, spec, None, None))
        for info in self.plugins:
            if info.status == "ok":
                self._register_components(info)

    # -- discovery --------------------------------------------------------------------
    def _load_entry_points(self) -> None:
        # the same distribution can be listed twice (two sys.path entries): load it once; a
        # *different* distribution using the same plugin name is recorded as failed by _load
        seen: set[tuple[str, str]] = set()
        for dist in importlib.metadata.distributions():
            dist_name = dist.metadata["name"]
            for ep in dist.entry_points:
                if ep.group != ENTRY_POINT_GROUP or (ep.name, dist_name) in seen:
                    continue
                seen.add((ep.name, dist_name))
                self._load(PluginInfo(ep.name, ep.value, dist_name, dist.version), entry_point=ep)

    def _load(self, info: PluginInfo, entry_point: Any = None) -> None:
        self.plugins.append(info)
        if info.name in self.blocked:
            info.status = "blocked"
            self.pm.set_blocked(info.name)
            return
        if self.pm.has_plugin(info.name):
            first = next(p for p in self.plugins if p.name == info.name)
            by = f" by {first.origin.describe()}" if first is not info else ""
            self._fail(info, "register", f"another plugin is already registered as '{info.name}'{by}")
            return
        try:
            plugin = entry_point.load() if entry_point is not None else importlib.import_module(str(info.module))
        except (Exception, SystemExit) as exc:  # any import failure is the plugin's, not ours
            self._fail(info, "import", f"{type(exc).__name__}: {exc}")
            return
        try:
            self.pm.register(plugin, name=info.name)
        except Exception as exc:  # pluggy.PluginValidationError: a hook with a wrong signature
            self._fail(info, "register", str(exc))
            return
        self._check_unknown_hooks(info, plugin)

    def _check_unknown_hooks(self, info: PluginInfo, plugin: ModuleType | Any) -> None:
        """Fail a plugin whose hook names no spec declares, or whose hooks lack ``@hookimpl``.

        pluggy would keep a misspelled hook pending and silently ignore an unmarked function,
        so the plugin would load and register nothing; failing now names the mistake.
        """
        known = {name for name in dir(hookspecs) if name.startswith("segforge_")}
        callers = self.pm.get_hookcallers(plugin) or []
        info.hooks = sorted(c.name for c in callers if c.name in known)
        unknown = sorted(
            c.name
            for c in callers
            if c.name not in known and not all(i.optionalhook for i in c.get_hookimpls() if i.plugin is plugin)
        )
        marker = f"{hookspecs.PROJECT_NAME}_impl"
        unmarked = sorted(
            n
            for n in dir(plugin)
            if n in known and inspect.isroutine(getattr(plugin, n, None)) and not hasattr(getattr(plugin, n), marker)
        )
        if unknown:
            close = difflib.get_close_matches(unknown[0], sorted(known), n=1)
            did = f" (did you mean '{close[0]}'?)" if close else ""
            self.pm.unregister(plugin)
            self._fail(info, "register", f"implements unknown hook '{unknown[0]}'{did}")
        elif unmarked:
            self.pm.unregister(plugin)
            self._fail(info, "register", f"defines '{unmarked[0]}' without the @segforge.hookimpl decorator")

    def _fail(self, info: PluginInfo, stage: str, cause: str) -> None:
        # one line: pluggy's validation errors put the useful part on their second line
        info.status, info.stage, info.error = "failed", stage, " ".join(cause.split())

    def _impls(self, info: PluginInfo, hook_name: str) -> list[Any]:
        """This plugin's implementations of one hook (honours ``@hookimpl(specname=...)``)."""
        plugin = self.pm.get_plugin(info.name)
        return [i for i in getattr(self.pm.hook, hook_name).get_hookimpls() if i.plugin is plugin]

    def _call(self, info: PluginInfo, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call one plugin's impls of a hook on their own, passing only the arguments each accepts."""
        return [impl.function(*[kwargs[a] for a in impl.argnames]) for impl in self._impls(info, hook_name)]

    # -- registration -----------------------------------------------------------------
    def _register_components(self, info: PluginInfo) -> None:
        staged: list[RegistrarView] = []
        for kind, (hook_name, _attrs) in KINDS.items():
            if hook_name not in info.hooks:
                continue
            view = RegistrarView(kind, info.origin)
            try:
                self._call(info, hook_name, registry=view)
            except Exception as exc:  # a hook that raises disables its whole plugin
                self._fail(info, hook_name, f"{type(exc).__name__}: {exc}")
                return
            staged.append(view)
        for view in staged:
            for entry in view.staged:
                try:
                    self.registries[entry.kind]._commit(entry)
                except DuplicateComponentError as exc:
                    self.conflicts.append(exc)
                    continue
                info.components.append((entry.kind, entry.name))

    # -- queries ----------------------------------------------------------------------
    def plugin(self, name: str) -> PluginInfo:
        for info in self.plugins:
            if info.name == name:
                return info
        names = [p.name for p in self.plugins]
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)  # as the registries do
        raise PluginError(
            f"no plugin named '{name}' (installed: {', '.join(names) or 'none'})",
            hint=f"did you mean '{close[0]}'?" if close else "`segforge plugins list --all` shows every plugin",
        )

    @property
    def failed(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.status == "failed"]

    def require_ok(self) -> Registries:
        """The registries, or a one-line PluginError for the first failed plugin or name clash."""
        for info in self.failed:
            where = f" ({info.dist} {info.version})" if info.dist and not info.builtin else ""
            what = "failed to import" if info.stage == "import" else f"failed in {info.stage}"
            raise PluginError(f"plugin '{info.name}'{where} {what}: {info.error}", hint=_disable_hint(info))
        if self.conflicts:
            raise self.conflicts[0]
        return self.registries

    def check_pending(self) -> None:
        """Raise if a registered plugin implements a hook no spec declares (pluggy's check)."""
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(str(exc), hint="check the hook's spelling against docs/plugins/hooks.md") from None

    def report_header(self) -> list[str]:
        """Lines from every plugin's ``segforge_report_header``, prefixed by the plugin name."""
        lines: list[str] = []
        for info in self.plugins:
            if info.status != "ok" or "segforge_report_header" not in info.hooks:
                continue
            try:
                results = self._call(info, "segforge_report_header")
            except Exception as exc:
                lines.append(f"{info.name}: report header failed: {type(exc).__name__}: {exc}")
                continue
            for result in results:
                for line in [result] if isinstance(result, str) else result or []:
                    lines.append(f"{info.name}: {line}")
        return lines

    def add_commands(self, app: Any) -> None:
        """Let each plugin add its command group; a failure is recorded, not raised."""
        from segforge.command_registrar import CommandRegistrar

        for info in self.plugins:
            if info.status != "ok" or "segforge_add_commands" not in info.hooks:
                continue
            try:
                self._call(info, "segforge_add_commands", app=CommandRegistrar(app, info))
            except Exception as exc:
                self._fail(info, "segforge_add_commands", f"{type(exc).__name__}: {exc}")


_MANAGER: SegforgeManager | None = None
_OPTIONS: dict[str, Any] = {}


def configure(*, blocked: Iterable[str] = (), extra: Iterable[str] = ()) -> None:
    """Set the ``-p`` options for the process-wide manager (called by the CLI before loading)."""
    global _MANAGER
    options = {"blocked": list(blocked), "extra": list(extra)}
    if options == _OPTIONS:  # same options again (main, then the root callback): keep what is loaded
        return
    _OPTIONS.clear()
    _OPTIONS.update(options)
    _MANAGER = None


def get_manager() -> SegforgeManager:
    """The process-wide plugin manager, created on first use."""
    global _MANAGER
    if _MANAGER is None:
        _MANAGER = SegforgeManager(**_OPTIONS)
    return _MANAGER


def reset_manager() -> None:
    """Forget the loaded plugins (tests, or after installing a plugin in-process)."""
    global _MANAGER
    _MANAGER = None
    _OPTIONS.clear()


def get_registries() -> Registries:
    """All component registries; raises a one-line PluginError if a plugin failed."""
    return get_manager().require_ok()
