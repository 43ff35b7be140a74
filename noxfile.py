"""Developer sessions: ``nox -s lint``, ``nox -s tests``, ``nox -s slow``, ``nox -s plugins``.

Each session installs torch first, pinned to ``TORCH_SPEC`` (default ``torch==2.13.0``, the
CPU wheel available on the project's CPU machines), so no dependency can pull a multi-GB
CUDA build. On a GPU machine set ``SEGFORGE_TORCH_SPEC`` (e.g. ``torch>=2.3``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.default_venv_backend = "venv"

TORCH_SPEC = os.environ.get("SEGFORGE_TORCH_SPEC", "torch==2.13.0")
ROOT = Path(__file__).parent
PLUGIN_DIRS = sorted(
    p.parent for p in [*ROOT.glob("plugins/*/pyproject.toml"), *ROOT.glob("examples/*/pyproject.toml")]
)


def _install_segforge(session: nox.Session, extras: str = "test") -> None:
    session.install(TORCH_SPEC)
    session.install("-e", f".[{extras}]")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff lint and format check over the package, tests, plugins and examples; the import-layer contracts."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", "src", "tests", "plugins", "examples", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "plugins", "examples", "benchmarks", "noxfile.py")
    # the import-layer contracts of pyproject's [tool.importlinter] (docs/architecture.md): grimp reads the
    # source of the installed package, so segforge is installed without its dependencies
    session.install("import-linter>=2")
    session.install("--no-deps", "-e", ".")
    session.run("lint-imports")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy over the public seams (hookspecs, registry, plugin manager, builder and image-IO contracts,
    the testing kit, the Python API): the files listed in pyproject's [tool.mypy]."""
    _install_segforge(session)
    session.install("mypy>=1.10")
    session.run("mypy")


@nox.session
def tests(session: nox.Session) -> None:
    """The default test run (the same command as README and CI)."""
    _install_segforge(session)
    session.run("pytest", "-q", *session.posargs)


@nox.session
def slow(session: nox.Session) -> None:
    """End-to-end tests on real data that take minutes (``-m slow``)."""
    _install_segforge(session)
    session.run("pytest", "-q", "-m", "slow", *session.posargs)


@nox.session
def plugins(session: nox.Session) -> None:
    """Install each plugin package into a fresh venv with segforge, run its tests, check it is listed;
    then the provenance test (a model of an uninstalled or other-major plugin gives a one-line error)."""
    _install_segforge(session)
    # provenance end to end (before the plugins are installed here: it installs and removes its own copy)
    session.run("pytest", "-q", "-m", "slow", "tests/test_plugin_provenance.py")
    for folder in PLUGIN_DIRS:
        session.install(str(folder))
        if (folder / "tests").is_dir():
            session.run("pytest", "-q", str(folder / "tests"))
        out = session.run("segforge", "plugins", "list", "--json", silent=True)
        data = json.loads(out)
        listed = data["plugins"] if isinstance(data, dict) else data
        dists = {p["dist"] for p in listed if p["status"] == "ok"}
        name = _dist_name(folder)
        if name not in dists:
            session.error(f"{name} is installed but `segforge plugins list` does not show it as ok")
        session.log(f"{name}: listed and its tests pass")
    # the reliability corpus entries that need an installed plugin (DICOM series) run only here
    session.run("pytest", "-q", "tests/reliability/test_bad_inputs.py", "-k", "dicom")
    _check_generated_skeleton(session)


def _check_generated_skeleton(session: nox.Session) -> None:
    """``segforge plugins new`` output installs, is listed as ok and passes its contract tests as generated."""
    import tempfile

    parent = Path(tempfile.mkdtemp(prefix="segforge-skeleton-"))
    session.run("segforge", "plugins", "new", "skeleton-check", "-o", str(parent))
    package = parent / "segforge-skeleton-check"
    session.install("-e", str(package))
    session.run("pytest", "-q", str(package / "tests"))
    out = session.run("segforge", "plugins", "list", "--json", silent=True)
    data = json.loads(out)
    listed = data["plugins"] if isinstance(data, dict) else data
    if "segforge-skeleton-check" not in {p["dist"] for p in listed if p["status"] == "ok"}:
        session.error("the generated plugin skeleton is installed but not listed as ok")
    session.run("pip", "uninstall", "-y", "segforge-skeleton-check")
    session.log("generated plugin skeleton: installed, listed and its tests pass")


#: nnU-Net v2 and MONAI's own requirements, minus torch (pinned first) and torchvision (its PyPI build
#: needs a CUDA torch); installed with --no-deps below so nothing can replace the CPU torch
PEER_NO_DEPS = [
    "nnunetv2==2.8.1", "dynamic-network-architectures>=0.4.4,<0.5", "batchgeneratorsv2>=0.3.2",
    "acvl-utils>=0.2.6,<0.3", "timm", "monai==1.6.1",
]  # fmt: skip
PEER_DEPS = [
    "tqdm", "scipy", "batchgenerators>=0.25.1", "numpy", "scikit-learn", "scikit-image>=0.19.3", "SimpleITK",
    "pandas", "graphviz", "tifffile", "requests", "nibabel", "matplotlib", "seaborn", "imagecodecs", "yacs",
    "einops", "blosc2>=3.3.2", "psutil", "connected-components-3d", "fft-conv-pytorch", "huggingface_hub",
    "safetensors", "pyyaml",
]  # fmt: skip


@nox.session(reuse_venv=True)
def peers(session: nox.Session) -> None:
    """The peer environment of the benchmarks and parity tests: nnU-Net v2 and MONAI beside segforge.

    One command, CPU torch kept: ``nox -s peers``; then run a benchmark with
    ``.nox/peers/bin/python benchmarks/predict.py`` or a parity test with
    ``.nox/peers/bin/python -m pytest tests/preprocessing/test_nnunet_parity.py``.
    """
    _install_segforge(session)
    session.install("--no-deps", *PEER_NO_DEPS)
    session.install(*PEER_DEPS)
    session.run(
        "python", "-c",
        "import torch, monai; from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor; "
        "from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer; "
        "print('peers ready: torch', torch.__version__, 'monai', monai.__version__)",
    )  # fmt: skip


def _dist_name(folder: Path) -> str:
    import tomllib

    return tomllib.loads((folder / "pyproject.toml").read_text())["project"]["name"]
