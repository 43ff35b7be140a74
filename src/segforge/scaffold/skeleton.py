"""Writing a plugin package skeleton from the templates in ``plugin_template/``.

The templates use ``{{placeholder}}`` markers (not ``str.format``), so the generated
Python keeps its own braces. The package is written into a hidden staging folder and renamed
into place, so it appears whole or not at all, and an existing folder is never overwritten.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from segforge.errors import ConfigError, UsageError

_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")

#: template file -> path in the package (``{module}`` replaced by the import name)
_FILES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "init.py.tmpl": "src/{module}/__init__.py",
    "plugin.py.tmpl": "src/{module}/plugin.py",
    "network.py.tmpl": "src/{module}/network.py",
    "test_contract.py.tmpl": "tests/test_contract.py",
}


@dataclass(frozen=True)
class SkeletonNames:
    """The names one plugin name implies: distribution, import package, entry point, network."""

    plugin: str
    dist: str
    module: str
    network: str
    builder_class: str

    @classmethod
    def from_plugin(cls, plugin: str, network: str | None = None) -> SkeletonNames:
        plugin = plugin.removeprefix("segforge-").removeprefix("segforge_")
        if not _NAME.match(plugin):
            raise UsageError(
                f"'{plugin}' is not a usable plugin name",
                hint="use lower-case letters, digits and single '-' or '_' between them, e.g. my-unet",
            )
        snake = plugin.replace("-", "_")
        network = network or f"{snake}_net"
        if not re.match(r"^[a-z][a-z0-9_.-]*$", network):
            raise UsageError(f"'{network}' is not a usable network name", hint="lower case, digits, '_', '-', '.'")
        camel = "".join(part.capitalize() for part in re.split(r"[-_.]", network))
        return cls(plugin, f"segforge-{plugin}", f"segforge_{snake}", network, f"{camel}Builder")


def render(template: str, names: SkeletonNames) -> str:
    """``template`` with every ``{{field}}`` replaced; an unknown field is a bug in the template."""

    def value(match: re.Match[str]) -> str:
        return str(getattr(names, match.group(1)))

    return re.sub(r"\{\{([a-z_]+)\}\}", value, template)


def write_skeleton(names: SkeletonNames, parent: Path) -> Path:
    """Write the package into ``parent/<dist>``; returns that folder. Refuses to touch an existing one."""
    target = Path(parent) / names.dist
    if target.exists():
        raise ConfigError(
            f"{target} already exists", hint="choose another --output folder or plugin name; nothing was changed"
        )
    templates = resources.files("segforge.scaffold") / "plugin_template"
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{names.dist}.", dir=target.parent))
    try:
        for template, relative in _FILES.items():
            path = staging / relative.format(module=names.module)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(templates.joinpath(template).read_text(encoding="utf-8"), names), encoding="utf-8")
        os.rename(staging, target)  # the package appears whole or not at all
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
