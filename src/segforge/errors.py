"""Errors that reach the user.

Every error segforge raises on purpose is a :class:`SegforgeError`: a one-line message
saying what went wrong and where (file, JSON path, plugin), plus a ``hint`` saying what to
do next. The CLI prints ``error: ...`` and ``hint: ...`` and exits with ``exit_code``; the
traceback is shown only with ``SEGFORGE_DEBUG=1``. Usage and configuration problems exit
with 2 (like Click's usage errors), failures while running exit with 1.
"""

from __future__ import annotations

from typing import Any


class SegforgeError(Exception):
    """Base class: a message for the user and an optional next step."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:  # one line, the hint travels separately
        return self.message


class UsageError(SegforgeError):
    """The command line asks for something impossible (bad flag value, missing folder)."""

    exit_code = 2


class ConfigError(SegforgeError):
    """A configuration or artifact (dataset.json, plans, params) is invalid."""

    exit_code = 2


class ComponentNotFoundError(ConfigError):
    """A component name is not registered; the message lists what is available."""


class PluginError(SegforgeError):
    """A plugin failed to import, raised inside a hook or registered something invalid."""

    exit_code = 2


class DuplicateComponentError(PluginError):
    """Two plugins registered a component of the same kind under the same name.

    Besides the message for people it carries ``kind``, ``name`` and the two ``origins``
    (registry ``Origin`` objects) for `segforge plugins list/show`.
    """

    kind: str = ""
    name: str = ""
    origins: tuple[Any, ...] = ()
