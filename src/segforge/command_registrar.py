"""What the ``segforge_add_commands`` hook receives: a guarded view of the root app.

A plugin may add exactly one command group, named after the plugin, so plugins cannot
shadow segforge's own commands or each other's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from segforge.errors import PluginError

if TYPE_CHECKING:  # pragma: no cover
    import typer

    from segforge.plugins import PluginInfo


class CommandRegistrar:
    """``app.add_typer(typer_app, name=...)`` for one plugin."""

    def __init__(self, app: typer.Typer, plugin: PluginInfo) -> None:
        self._app = app
        self._plugin = plugin
        self.added: list[str] = []

    def add_typer(self, typer_app: typer.Typer, *, name: str | None = None, help: str | None = None) -> None:
        name = name or self._plugin.name
        if name != self._plugin.name:
            raise PluginError(
                f"plugin '{self._plugin.name}' tried to add command group '{name}'",
                hint="a plugin's command group must be named after the plugin",
            )
        existing = {g.name for g in self._app.registered_groups} | {
            c.name or (c.callback.__name__ if c.callback else "") for c in self._app.registered_commands
        }
        if name in existing:
            raise PluginError(f"plugin '{name}' would replace the existing command '{name}'")
        kwargs: dict[str, Any] = {"name": name}
        if help is not None:
            kwargs["help"] = help
        self._app.add_typer(typer_app, **kwargs)
        self.added.append(name)
