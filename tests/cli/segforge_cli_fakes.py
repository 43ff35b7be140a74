"""Fakes shared by the CLI tests: plugin sources, run results and table parsing.

In-memory distributions come from :mod:`segforge.testing.fake_plugins`.

A plain module (not conftest.py) so test files can import its names; pytest puts this
folder on sys.path because it is not a package.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TINY_PLUGIN = '''
from pydantic import BaseModel, Field
from segforge import hookimpl


class TinyNet:
    """A tiny network for CLI tests.

    It builds nothing.
    """

    class Params(BaseModel):
        width: int = Field(8, description="channels of the first stage")
        depth: int = 2

    name = "NAME"
    version = "2.5"
    dims = (3,)
    recommended_trainer = "tiny_trainer"

    def constraints(self, params):
        return None

    def propose(self, request):
        return self.Params()

    def build(self, params, in_channels, num_classes, deep_supervision=True):
        return None

    def estimate_memory(self, *args, **kwargs):
        return 0


class NeedsParams(TinyNet):
    """A network whose Params have a required field."""

    class Params(BaseModel):
        kernel: int

    name = "NAME_strict"


@hookimpl
def segforge_register_networks(registry):
    registry.add(TinyNet())
    registry.add(NeedsParams())


@hookimpl
def segforge_report_header():
    return "tiny kernels: none"
'''


def tiny_plugin(name: str = "tinynet") -> str:
    """Source of a plugin registering networks ``name`` and ``name_strict`` and a header line."""
    return TINY_PLUGIN.replace("NAME", name)


BROKEN_PLUGIN = 'raise ImportError("needs libfoo")\n'


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str


def cells(line: str) -> list[str]:
    """The cells of one printed table row (columns are separated by at least two spaces)."""
    return re.split(r"\s{2,}", line.strip())


def find_row(text: str, first: str) -> list[str]:
    """The cells of the first row of ``text`` whose first cell is ``first``."""
    for line in text.splitlines():
        row = cells(line)
        if row[0] == first:
            return row
    raise AssertionError(f"no row starting with {first!r} in:\n{text}")
