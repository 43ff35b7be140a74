"""The plugin contract: every hook segforge calls, in one place.

A plugin is a module (found through the ``segforge`` entry-point group, or a builtin
module of segforge itself) with functions decorated by :data:`segforge.hookimpl`. An
implementation may accept fewer arguments than the spec lists. Hookspecs only ever grow:
new arguments may be added, existing ones are never removed or renamed.

The ``segforge_register_*`` hooks are *registrars*: segforge calls each plugin's
implementation on its own with a registry bound to that plugin, so every component knows
which plugin, distribution and version it came from. Registering a component makes it
*available*; a run uses it only when plans or command-line flags select it by name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # pragma: no cover - typing only
    from segforge.command_registrar import CommandRegistrar
    from segforge.registry import RegistrarView

PROJECT_NAME = "segforge"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def segforge_register_networks(registry: RegistrarView) -> None:
    """Add network builders with ``registry.add(builder)``.

    A builder has ``name``, ``version``, a pydantic ``Params`` model, the ``dims`` it
    supports, ``constraints(params)``, ``propose(request)``, ``build(params, in_channels,
    num_classes, deep_supervision)`` and ``estimate_memory(...)`` (see
    :class:`segforge.networks.builder.NetworkBuilder`).
    """


@hookspec
def segforge_register_trainers(registry: RegistrarView) -> None:
    """Add trainers (training recipes: optimizer, schedule, epochs, sampling, augmentation)."""


@hookspec
def segforge_register_losses(registry: RegistrarView) -> None:
    """Add losses (e.g. ``dc_ce``); selected with ``--loss`` or by a trainer's default."""


@hookspec
def segforge_register_planners(registry: RegistrarView) -> None:
    """Add experiment planners that turn a dataset fingerprint into plans."""


@hookspec
def segforge_register_normalizations(registry: RegistrarView) -> None:
    """Add intensity normalization schemes (e.g. ``zscore``, ``ct``) used by preprocessing."""


@hookspec
def segforge_register_image_io(registry: RegistrarView) -> None:
    """Add image readers/writers; each declares the file endings it handles."""


@hookspec
def segforge_register_callbacks(registry: RegistrarView) -> None:
    """Add training callbacks (loggers etc.). Installed callbacks run only when a run selects them."""


@hookspec
def segforge_add_commands(app: CommandRegistrar) -> None:
    """Add one sub-command group to the CLI: ``app.add_typer(typer_app, name=<plugin name>)``."""


@hookspec
def segforge_report_header() -> str | list[str] | None:
    """Return lines shown by ``segforge --version -v`` / ``segforge info`` and stored in run manifests."""
