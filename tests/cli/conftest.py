"""CLI test helpers: run ``main([...])`` with captured streams, and fake plugin distributions."""

from __future__ import annotations

from pathlib import Path

import pytest
from segforge_cli_fakes import Run

from segforge.cli.app import main
from segforge.testing.fake_plugins import FakePlugins


@pytest.fixture(autouse=True)
def _plain_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """Output as in a pipe (no colours, no wrapping), whatever terminal runs the tests."""
    for var in ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def fake_dists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``add(dist, code, plugin=..., version=...)``: a fake installed distribution with one plugin.

    Only fake distributions are visible, so plugins installed in the test environment cannot
    change what the commands print.
    """
    with FakePlugins(tmp_path, monkeypatch, prefix="fake_segforge_cli_plugin_") as fakes:
        fakes.hide_installed()
        yield fakes.install


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """``cli("plugins", "list")``: run ``segforge`` in-process through :func:`main`."""

    def run(*args: str) -> Run:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run
