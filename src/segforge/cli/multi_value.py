"""Options that take several values after one flag (``-i DIR1 DIR2``, ``--configs 2d 3d_fullres``).

Click gives an option exactly one value per occurrence, and the ``ctx.args`` trick other
commands use (extra positional words belong to the one list option) cannot tell apart two
such options in one command. A command class built by :func:`multi_value_command` rewrites
``--configs 2d 3d_fullres --folds 0 1`` into ``--configs 2d --configs 3d_fullres --folds 0
--folds 1`` before Click parses it, so every listed option is an ordinary repeatable option.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from typer.core import TyperCommand


def _is_flag(word: str) -> bool:
    """An option word (``-x``, ``--name``), not a value such as ``-1``."""
    return word.startswith("-") and len(word) > 1 and not word[1:].replace(".", "", 1).isdigit()


def expand_multi_values(args: Sequence[str], names: Sequence[str]) -> list[str]:
    """Repeat a listed option before each further value that follows it (until the next flag or ``--``)."""
    out: list[str] = []
    current: str | None = None
    has_value = False
    for i, word in enumerate(args):
        if word == "--":
            return out + list(args[i:])
        if _is_flag(word):
            current, has_value = (word, False) if word in names else (None, False)
            out.append(word)
        elif current is not None and has_value:
            out += [current, word]
        else:
            has_value = current is not None
            out.append(word)
    return out


def multi_value_command(*names: str) -> type[TyperCommand]:
    """A Typer command class whose options ``names`` (every spelling) accept several values."""

    class MultiValueCommand(TyperCommand):
        def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
            return super().parse_args(ctx, expand_multi_values(args, names))

    return MultiValueCommand
