"""``segforge plugins list`` and ``segforge plugins show``: what is installed, from which package.

These commands must work when a plugin is broken — that is when people run them — so they
read the manager's records and never call ``require_ok()``. Failed plugins are listed with
their cause, duplicate component names with both origins.

``plugins list`` hides healthy builtin plugins in its table unless ``--all`` (as pytest and
datasette do: the interesting part is what *you* installed), but ``--json`` always lists
every plugin with a ``builtin`` flag, so scripts see the builtin networks with their origin
and version without needing to know about ``--all``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from segforge.cli import render

if TYPE_CHECKING:  # pragma: no cover
    from rich.table import Table

    from segforge.errors import DuplicateComponentError
    from segforge.plugins import PluginInfo, SegforgeManager


def _short_hook(name: str) -> str:
    return name.removeprefix("segforge_")


def component_records(manager: SegforgeManager, info: PluginInfo) -> list[dict[str, str]]:
    """The components a plugin registered: kind, name and the component's own version."""
    return [
        {"kind": kind, "name": name, "version": manager.registries[kind].entry(name).version}
        for kind, name in info.components
    ]


def conflict_record(exc: DuplicateComponentError) -> dict[str, Any]:
    """A duplicate component name as data (the message names both origins)."""
    origins = getattr(exc, "origins", ())
    return {
        "kind": getattr(exc, "kind", None),
        "name": getattr(exc, "name", None),
        "plugins": [o.plugin for o in origins],
        "message": exc.message,
        "hint": exc.hint,
    }


def plugin_record(manager: SegforgeManager, info: PluginInfo) -> dict[str, Any]:
    """Everything known about one plugin, JSON-ready."""
    record = info.as_dict()
    record["components"] = component_records(manager, info)
    return record


def plugins_report(manager: SegforgeManager) -> dict[str, Any]:
    """``plugins list --json``: every plugin (builtins included) and every name clash."""
    return {
        "plugins": [plugin_record(manager, p) for p in manager.plugins],
        "conflicts": [conflict_record(c) for c in manager.conflicts],
    }


def plugins_table(
    manager: SegforgeManager, *, include_builtins: bool = True, title: str | None = None
) -> tuple[Table, int]:
    """The plugin table and how many healthy builtins it left out."""
    shown = [p for p in manager.plugins if include_builtins or not p.builtin or p.status != "ok"]
    rows = [
        (p.name, p.dist, p.version, render.status(p.status), [_short_hook(h) for h in p.hooks], len(p.components))
        for p in shown
    ]
    columns = ("plugin", "distribution", "version", "status", "hooks", "components")
    return render.table(columns, rows, title=title), len(manager.plugins) - len(shown)


def problems_table(manager: SegforgeManager) -> Table | None:
    """Failed plugins with their cause and duplicate names, or None when all is well."""
    rows = [(p.name, p.stage, p.error) for p in manager.failed]
    rows += [(", ".join(conflict_record(c)["plugins"]) or "?", "duplicate name", c.message) for c in manager.conflicts]
    if not rows:
        return None
    return render.table(("plugin", "stage", "cause"), rows, title="problems")


def list_plugins(
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout (always includes builtin plugins).")] = False,
    show_all: Annotated[bool, typer.Option("--all", help="Include segforge's builtin plugins in the table.")] = False,
) -> None:
    """List installed plugins: distribution, version, status, hooks and number of components."""
    from segforge.plugins import get_manager

    manager = get_manager()
    if as_json:
        render.print_json(plugins_report(manager))
        return
    table, hidden = plugins_table(manager, include_builtins=show_all)
    problems = problems_table(manager)
    render.show(table, *([problems] if problems is not None else []))
    if hidden:
        render.message(f"{hidden} builtin plugin(s) hidden; `segforge plugins list --all` shows them")


def _plugin_conflicts(manager: SegforgeManager, name: str) -> list[DuplicateComponentError]:
    return [c for c in manager.conflicts if name in conflict_record(c)["plugins"]]


def show_plugin(
    name: Annotated[str, typer.Argument(help="Plugin name, as `segforge plugins list --all` shows it.")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
) -> None:
    """Show one plugin: module, distribution, version, status, error, hooks and components."""
    from segforge.plugins import get_manager

    manager = get_manager()
    info = manager.plugin(name)
    conflicts = _plugin_conflicts(manager, info.name)
    if as_json:
        record = plugin_record(manager, info)
        record["conflicts"] = [conflict_record(c) for c in conflicts]
        render.print_json(record)
        return
    pairs = [
        ("name", info.name),
        ("module", info.module),
        ("distribution", info.dist),
        ("version", info.version),
        ("builtin", "yes" if info.builtin else "no"),
        ("status", render.status(info.status)),
    ]
    if info.status == "failed":
        pairs += [("stage", info.stage), ("error", render.cell(info.error, "red"))]
    pairs.append(("hooks", info.hooks))
    parts: list[Any] = [render.fields(pairs, title=f"plugin {info.name}")]
    entries = [manager.registries[k].entry(n) for k, n in info.components]
    if entries:
        rows = [(e.kind, e.name, e.version, e.summary) for e in entries]
        parts.append(render.table(("kind", "name", "version", "summary"), rows, title="components"))
    if conflicts:
        parts.append(render.table(("conflict", "hint"), [(c.message, c.hint) for c in conflicts], title="conflicts"))
    render.show(*parts)


def new_plugin(
    name: Annotated[str, typer.Argument(help="Plugin name, e.g. my-unet (the package is segforge-my-unet).")],
    network: Annotated[
        Optional[str], typer.Option("--network", help="Name of the network it registers (default: NAME_net).")
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to create the package in.")] = Path("."),
) -> None:
    """Write a plugin package that works as generated: entry point, one network builder, contract tests.

    Then: `pip install -e ./segforge-NAME[test]`, `python -m pytest segforge-NAME/tests`.
    """
    from segforge.scaffold.skeleton import SkeletonNames, write_skeleton

    names = SkeletonNames.from_plugin(name, network)
    target = write_skeleton(names, output)
    render.message(f"wrote {target} (plugin '{names.plugin}', network '{names.network}')")
    render.message(f"next: pip install -e '{target}[test]' && python -m pytest {target / 'tests'}")


def register(app: typer.Typer) -> None:
    """Add the ``plugins`` command group to the root app."""
    group = typer.Typer(
        name="plugins", help="Installed plugins: what they are and whether they loaded.", no_args_is_help=True
    )
    group.command("list")(list_plugins)
    group.command("show")(show_plugin)
    group.command("new")(new_plugin)
    app.add_typer(group, name="plugins")
