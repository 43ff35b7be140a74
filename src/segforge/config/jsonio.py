"""Load and save pydantic models as JSON, with one-line errors that name the file and field.

Artifacts are data, never code: they are read with ``json`` only, so a file holding a
pickle (or anything else that is not JSON) is refused without being executed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from segforge.atomic import atomic_write_text
from segforge.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class _NonFiniteNumber(ValueError):
    """NaN/Infinity in a file: Python's json accepts them, strict JSON (and segforge's writers) do not."""


def _refuse_constant(name: str) -> float:
    raise _NonFiniteNumber(name)


def read_json(path: str | os.PathLike[str], *, hint: str | None = None) -> object:
    """Parse a JSON file; missing, unreadable or non-JSON files give a ConfigError naming it."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found", hint=hint) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})", hint=hint) from None
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except _NonFiniteNumber as exc:
        raise ConfigError(
            f"{path}: not valid JSON ({exc} is not a number)", hint=hint or "replace it by a number or null"
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise ConfigError(
            f"{path}: not valid JSON{where}", hint=hint or "restore the file or re-create it with segforge"
        ) from None


def format_validation_error(path: str | os.PathLike[str], exc: ValidationError) -> str:
    """``file: field.path: message`` for the first error, plus how many more there are."""
    errors = exc.errors()
    first = errors[0]
    loc = ".".join(str(p) for p in first["loc"])
    where = f"{loc}: " if loc else ""  # a whole-object check names no field; its message does
    msg = str(first["msg"]).removeprefix("Value error, ")  # pydantic's prefix for our validators' ValueErrors
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{path}: {where}{msg}{more}"


def load_model(path: str | os.PathLike[str], model: type[M], *, hint: str | None = None) -> M:
    """Read ``path`` and validate it as ``model``; any problem is a one-line ConfigError."""
    data = read_json(path, hint=hint)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(path, exc), hint=hint) from None


def save_model(path: str | os.PathLike[str], obj: BaseModel) -> None:
    """Write ``obj`` atomically as indented JSON."""
    atomic_write_text(path, obj.model_dump_json(indent=2) + "\n")
