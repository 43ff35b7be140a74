"""The example callback plugin, pip-installed into a throwaway venv, receives every documented event of a run.

What ``nox -s plugins`` does for every package under examples/, as one test: segforge and
examples/segforge-example-callback are installed with pip (this interpreter's dependencies
are reused through a ``.pth`` file, so torch is not installed again), then the example's own
tests run with that venv's interpreter; they train a tiny task with ``--callback event_log``.
"""

from __future__ import annotations

import os
import site
import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "segforge-example-callback"


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEGFORGE_", "PYTHONPATH"))}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, cwd=cwd)


@pytest.mark.slow  # builds segforge with pip and trains a tiny task (~2 min)
def test_installed_callback_plugin_receives_every_event(tmp_path: Path) -> None:
    root = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(root)
    py = root / "bin" / "python"
    purelib = _run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    deps = {sysconfig.get_paths()["purelib"], *site.getsitepackages()}
    (Path(purelib) / "_segforge_test_deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    for target in (REPO, EXAMPLE):
        res = _run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(target)])
        assert res.returncode == 0, f"pip install {target.name} failed:\n{res.stderr[-2000:]}"
    where = _run(
        [str(py), "-c", "import segforge, segforge_example_callback as e; print(segforge.__file__, e.__file__)"]
    )
    assert str(root) in where.stdout.split()[0] and str(root) in where.stdout.split()[1], where.stdout + where.stderr
    res = _run([str(py), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")], cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "2 passed" in res.stdout
