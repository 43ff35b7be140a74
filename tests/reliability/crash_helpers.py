"""Helpers for the SIGKILL tests: run a segforge command, kill it at a random point, check every file.

The promise under test (DESIGN.md, "Nothing is lost"): a file under its final name is always
complete, because every writer goes through a temporary name and a rename. So while the
command runs, and after it is killed, every file that is not a temporary must open with the
reader segforge itself uses. A re-run (or ``--continue``) must then produce exactly what an
uninterrupted run produces.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from segforge_tiny_task import shrink_network  # noqa: E402  (one copy of the plans shrinker)

#: segforge's own temporaries (segforge.atomic): ``.<final name>.<random>.tmp[<suffix>]``
TEMPORARY_MARK = ".tmp"


def is_temporary(path: Path) -> bool:
    return path.name.startswith(".") and TEMPORARY_MARK in path.name


def segforge_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "segforge", *args]


def check_file(path: Path) -> str | None:
    """Open ``path`` with the reader its ending calls for; the problem as text, or None when it is fine."""
    name = path.name
    try:
        if name.endswith(".nii.gz"):
            import SimpleITK as sitk

            sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
        elif name.endswith(".npy"):
            np.load(path, allow_pickle=False)
        elif name.endswith(".npz"):
            with np.load(path, allow_pickle=False) as data:
                for key in data.files:
                    data[key]  # noqa: B018 - decompressing each member is the check
        elif name.endswith(".json"):
            json.loads(path.read_text(encoding="utf-8"))
        elif name.endswith(".pt"):
            import torch

            torch.load(path, map_location="cpu", weights_only=True)
        elif name.endswith(".png"):
            data = path.read_bytes()
            if not (data.startswith(b"\x89PNG\r\n\x1a\n") and data.rstrip(b"\x00").endswith(b"IEND\xaeB`\x82")):
                return "not a complete PNG"
    except Exception as exc:  # noqa: BLE001 - any failure to read is the finding
        return f"{type(exc).__name__}: {exc}"
    return None


@dataclass
class FileWatch:
    """Checks every final file under ``roots`` once per version (path, size, mtime)."""

    roots: list[Path]
    seen: dict[Path, tuple[int, int]] = field(default_factory=dict)
    corrupt: list[str] = field(default_factory=list)

    def final_files(self) -> list[Path]:
        found: list[Path] = []
        for root in self.roots:
            if root.exists():
                found.extend(p for p in root.rglob("*") if p.is_file() and not is_temporary(p))
        return found

    def check(self) -> None:
        for path in self.final_files():
            try:
                stat = path.stat()
            except FileNotFoundError:  # replaced or removed between listing and stat
                continue
            version = (stat.st_size, stat.st_mtime_ns)
            if self.seen.get(path) == version:
                continue
            self.seen[path] = version
            problem = check_file(path)
            if problem is not None and path.exists():
                self.corrupt.append(f"{path}: {problem}")


@dataclass
class KillReport:
    killed: bool  # False: the command finished before the kill point
    returncode: int
    corrupt: list[str]
    checked: int
    stderr: str


def run_and_kill(
    cmd: list[str],
    env: dict[str, str],
    watch: list[Path],
    kill_when: Callable[[], bool],
    rng: np.random.Generator,
    max_extra_delay: float = 0.1,
    timeout: float = 240.0,
) -> KillReport:
    """Start ``cmd``; once ``kill_when()`` holds, wait a random extra moment and SIGKILL it.

    Every final file under ``watch`` is checked while the command runs and once more after it died.
    """
    files = FileWatch([Path(p) for p in watch])
    with open(os.devnull, "w") as devnull:
        proc = subprocess.Popen(cmd, env=env, stdout=devnull, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and not kill_when():
            files.check()
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for the kill point of {' '.join(cmd[2:])}")
            time.sleep(0.01)
        end = time.monotonic() + float(rng.uniform(0.0, max_extra_delay))
        while time.monotonic() < end and proc.poll() is None:
            files.check()
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    files.check()
    killed = proc.returncode == -signal.SIGKILL
    return KillReport(killed, proc.returncode, files.corrupt, len(files.seen), err or "")


def run_ok(cmd: list[str], env: dict[str, str], timeout: float = 300.0) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(cmd[2:])} failed ({done.returncode}):\n{done.stderr[-3000:]}"
    return done


def count_files(folder: Path, pattern: str) -> int:
    return sum(1 for p in folder.glob(pattern) if not is_temporary(p)) if folder.exists() else 0


def file_contents(root: Path, skip: Callable[[Path], bool] = lambda p: False) -> dict[str, object]:
    """Every final file under ``root`` as comparable content: arrays (+ geometry) for images, parsed JSON, bytes."""
    import SimpleITK as sitk

    out: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or is_temporary(path) or skip(path):
            continue
        rel = str(path.relative_to(root))
        if path.name.endswith(".nii.gz"):
            image = sitk.ReadImage(str(path))
            array = sitk.GetArrayFromImage(image)
            out[rel] = (array.dtype.str, array.shape, array.tobytes(), image.GetSpacing(), image.GetOrigin(),
                        image.GetDirection())  # fmt: skip
        elif path.name.endswith(".npy"):
            array = np.load(path, allow_pickle=False)
            out[rel] = (array.dtype.str, array.shape, array.tobytes())
        elif path.name.endswith(".npz"):
            with np.load(path, allow_pickle=False) as data:
                out[rel] = {k: (data[k].dtype.str, data[k].shape, data[k].tobytes()) for k in data.files}
        elif path.name.endswith(".json"):
            out[rel] = json.loads(path.read_text(encoding="utf-8"))
        else:
            out[rel] = path.read_bytes()
    return out


def plant_temporary(final: Path, suffix: str = "") -> Path:
    """What a writer killed mid-file leaves beside ``final`` (segforge.atomic's naming); a re-run must remove it."""
    path = final.with_name(f".{final.name}.killed0{TEMPORARY_MARK}{suffix}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"half a file")
    return path


def temporaries(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and is_temporary(p))


def base_env(**folders: Path) -> dict[str, str]:
    """The current environment with SEGFORGE_<NAME> set from ``folders`` and no user plugins."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEGFORGE_", "nnUNet_")) and k != "RESULTS_FOLDER"}
    env.update({f"SEGFORGE_{name.upper()}": str(path) for name, path in folders.items()})
    env["SEGFORGE_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env["OMP_NUM_THREADS"] = "1"
    return env


def prepare_tiny_task(root: Path, number: int, dataset: str) -> Path:
    """``root/{raw,pre}``: 6 synthetic cases, planned and preprocessed, with a 4-8-16 feature U-Net."""
    from segforge.testing.synthetic import make_task

    make_task(root / "raw" / dataset, n_cases=6, shape=(16, 20, 18), spacing=(1.0, 1.0, 1.0), seed=3)
    env = base_env(raw=root / "raw", preprocessed=root / "pre")
    run_ok(segforge_cmd("plan-and-preprocess", "--task", str(number), "-np", "1", "--configs", "3d_fullres"), env)
    shrink_network(root / "pre" / dataset / "segforgePlans.json", [4, 8, 16])
    return root
