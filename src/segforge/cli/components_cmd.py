"""``segforge components list`` and ``segforge components show``: every registered component.

Unlike ``plugins list`` these commands need a healthy registry (a name listed here must be
usable in a run), so they go through ``get_registries()``: a broken plugin stops them with
the one-line error that says how to disable it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from segforge.cli import render

if TYPE_CHECKING:  # pragma: no cover
    from rich.table import Table

    from segforge.registry import Entry, Registries


def _kind(registries: Registries, kind: str) -> str:
    """Accept ``network`` and ``networks``; an unknown kind raises with the list of kinds."""
    if kind not in registries.kinds() and kind.endswith("s") and kind[:-1] in registries.kinds():
        kind = kind[:-1]
    registries[kind]  # noqa: B018 - raises ComponentNotFoundError with did-you-mean
    return kind


def component_record(entry: Entry) -> dict[str, Any]:
    """One component as ``components list --json`` shows it."""
    return {
        "kind": entry.kind,
        "name": entry.name,
        "version": entry.version,
        "origin": entry.origin.as_dict(),
        "summary": entry.summary,
    }


def _origin_text(entry: Entry) -> str:
    origin = entry.origin
    dist = f"{origin.dist} {origin.version}" if origin.dist else "no distribution"
    return f"{origin.plugin} ({dist})"


def list_components(
    kind: Annotated[Optional[str], typer.Option("--kind", "-k", help="Only this kind (network, loss, ...).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
) -> None:
    """List registered components: kind, name, version, origin (plugin, distribution) and summary."""
    from segforge.plugins import get_registries

    registries = get_registries()
    entries = registries.entries(_kind(registries, kind) if kind else None)
    if as_json:
        render.print_json([component_record(e) for e in entries])
        return
    rows = [(e.kind, e.name, e.version, _origin_text(e), e.summary) for e in entries]
    render.show(render.table(("kind", "name", "version", "origin", "summary"), rows))
    if not entries:
        render.message(f"no {kind} components registered" if kind else "no components registered")


def params_detail(params_model: Any) -> dict[str, Any]:
    """The Params JSON schema, its defaults when ``Params()`` is valid, and the required fields."""
    if not hasattr(params_model, "model_json_schema"):
        return {"schema": None, "defaults": None, "required": [], "note": "Params is not a pydantic model"}
    fields = getattr(params_model, "model_fields", {})
    required = [name for name, info in fields.items() if info.is_required()]
    detail: dict[str, Any] = {"schema": params_model.model_json_schema(), "defaults": None, "required": required}
    try:
        detail["defaults"] = params_model().model_dump(mode="json")
    except Exception as exc:  # required fields, or a validator that rejects the defaults
        detail["note"] = f"no defaults: {' '.join(str(exc).split())}"
    return detail


def component_detail(entry: Entry) -> dict[str, Any]:
    """Everything ``components show`` reports about one component, JSON-ready."""
    component = entry.component
    detail = component_record(entry)
    detail["doc"] = entry.doc
    detail["params"] = params_detail(getattr(component, "Params", None))
    if entry.kind == "network":
        detail["dims"] = list(getattr(component, "dims", ()))
        detail["recommended_trainer"] = getattr(component, "recommended_trainer", None)
    if entry.kind == "image_io":
        detail["file_endings"] = list(getattr(component, "file_endings", ()))
    return detail


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type) and not getattr(annotation, "__args__", None):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def params_table(params_model: Any, defaults: dict[str, Any] | None) -> Table | None:
    """One row per Params field: name, type, default (or "required") and description."""
    fields = getattr(params_model, "model_fields", None)
    if not fields:
        return None
    rows = []
    for name, info in fields.items():
        if info.is_required():
            default = render.cell("required", "yellow")
        elif defaults is not None and name in defaults:
            default = json.dumps(defaults[name])
        else:
            default = repr(info.get_default(call_default_factory=True))
        rows.append((name, _type_name(info.annotation), default, info.description))
    return render.table(("param", "type", "default", "description"), rows, title="params")


def show_component(
    kind: Annotated[str, typer.Argument(help="Component kind: network, trainer, loss, planner, ...")],
    name: Annotated[str, typer.Argument(help="Registered name, e.g. generic_unet.")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
) -> None:
    """Show one component: origin, version, docstring, params (schema and defaults)."""
    from segforge.plugins import get_registries

    registries = get_registries()
    entry = registries[_kind(registries, kind)].entry(name)
    detail = component_detail(entry)
    if as_json:
        render.print_json(detail)
        return
    pairs: list[tuple[str, Any]] = [
        ("kind", entry.kind),
        ("name", entry.name),
        ("version", entry.version),
        ("origin", entry.origin.describe()),
    ]
    pairs += [(key, detail[key]) for key in ("dims", "recommended_trainer", "file_endings") if key in detail]
    if detail["params"].get("note"):
        pairs.append(("params", detail["params"]["note"]))
    parts: list[Any] = [render.fields(pairs, title=f"{entry.kind} {entry.name}")]
    if entry.doc:
        parts.append(render.cell(entry.doc))
    table = params_table(getattr(entry.component, "Params", None), detail["params"]["defaults"])
    if table is not None:
        parts.append(table)
    render.show(*parts)


def register(app: typer.Typer) -> None:
    """Add the ``components`` command group to the root app."""
    group = typer.Typer(
        name="components", help="Registered components (networks, losses, ...) and their params.", no_args_is_help=True
    )
    group.command("list")(list_components)
    group.command("show")(show_component)
    app.add_typer(group, name="components")
