"""Fake installed plugins: test a plugin's registration without pip-installing it.

segforge discovers plugins through ``importlib.metadata.distributions()``. This module lets a
test stand in for pip (as pluggy's and pytest's own tests do): it writes plugin source into an
importable module and makes ``distributions()`` yield in-memory distributions whose
``segforge`` entry points name those modules. In a plugin's test suite::

    import pytest
    from segforge.plugins import SegforgeManager
    from segforge.testing.fake_plugins import FakePlugins

    @pytest.fixture
    def fakes(tmp_path, monkeypatch):
        with FakePlugins(tmp_path, monkeypatch) as fakes:
            yield fakes

    def test_my_plugin_registers(fakes):
        fakes.add_distribution("segforge-duonet", "0.1.0", {"duonet": "segforge_duonet.plugin"})
        manager = SegforgeManager(builtins=())
        assert manager.plugin("duonet").status == "ok"

Only the fake distributions are visible once one is added (or :meth:`FakePlugins.hide_installed`
is called), so whatever else is installed in the test environment cannot change the outcome.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
import textwrap
import uuid
from pathlib import Path
from types import TracebackType

import pytest


class FakeDistribution(importlib.metadata.Distribution):
    """A distribution that exists only in memory: its METADATA and a ``[segforge]`` entry_points.txt."""

    def __init__(self, name: str, version: str, entry_points: dict[str, str]) -> None:
        eps = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
        self._files = {
            "METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
            "entry_points.txt": f"[segforge]\n{eps}",
        }

    def read_text(self, filename: str) -> str | None:
        return self._files.get(filename)

    def locate_file(self, path: str | os.PathLike[str]) -> Path:  # pragma: no cover - nothing asks for files
        return Path(path)


class FakePlugins:
    """Plugin modules written into ``folder`` and fake distributions naming them.

    ``monkeypatch`` (pytest's) undoes the ``sys.path`` entry and the patched ``distributions``
    after the test; :meth:`close` (or leaving the ``with`` block) forgets the written modules
    so a later test cannot import a stale one.
    """

    def __init__(self, folder: Path, monkeypatch: pytest.MonkeyPatch, *, prefix: str = "fake_segforge_plugin_") -> None:
        self.folder = Path(folder)
        self.prefix = prefix
        self.distributions: list[importlib.metadata.Distribution] = []
        self.modules: list[str] = []
        self._monkeypatch = monkeypatch
        self._hiding = False
        monkeypatch.syspath_prepend(str(self.folder))

    def write_module(self, source: str) -> str:
        """Write plugin ``source`` (dedented) as a module with a unique name; returns that name."""
        module = f"{self.prefix}{uuid.uuid4().hex[:10]}"
        (self.folder / f"{module}.py").write_text(textwrap.dedent(source))
        self.modules.append(module)
        return module

    def hide_installed(self) -> None:
        """Make ``importlib.metadata.distributions()`` yield only the fake distributions."""
        if not self._hiding:
            self._monkeypatch.setattr(importlib.metadata, "distributions", lambda **kw: iter(list(self.distributions)))
            self._hiding = True

    def add_distribution(self, name: str, version: str, entry_points: dict[str, str]) -> FakeDistribution:
        """Make a distribution ``name`` with ``entry_points`` (plugin name -> module) look installed."""
        dist = FakeDistribution(name, version, entry_points)
        self.distributions.append(dist)
        self.hide_installed()
        return dist

    def install(self, dist: str, source: str, *, plugin: str | None = None, version: str = "1.0") -> str:
        """Write ``source`` as a module and install it as plugin ``plugin`` of ``dist``; returns the module.

        ``plugin`` defaults to ``dist`` without its ``segforge-`` prefix, the usual naming.
        """
        module = self.write_module(source)
        self.add_distribution(dist, version, {plugin or dist.removeprefix("segforge-"): module})
        return module

    def close(self) -> None:
        """Forget the written modules (drop them from ``sys.modules``)."""
        for module in self.modules:
            sys.modules.pop(module, None)

    def __enter__(self) -> FakePlugins:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
