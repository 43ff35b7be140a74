"""The demo data shipped in the package: complete, attributed, licensed, valid, and in the wheel."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from segforge.demo import DEMO_DATASET, DEMO_NOTICES, demo_data_path

REPO = Path(__file__).resolve().parents[2]
ATTRIBUTION = ("Medical Segmentation Decathlon", "Simpson", "arXiv:1902.09063", "Antonelli",
               "Nature Communications", "2022", "Vanderbilt University Medical Center", "CC BY-SA 4.0")  # fmt: skip


def _cases(folder: Path) -> set[str]:
    return {p.name for p in folder.glob("*.nii.gz")}


def test_dataset_json_lists_exactly_the_files_of_40_training_and_8_test_cases():
    data = demo_data_path()
    dj = json.loads((data / "dataset.json").read_text())
    train = {Path(e["image"]).name for e in dj["training"]}
    test = {Path(t).name for t in dj["test"]}
    assert (dj["numTraining"], dj["numTest"], len(train), len(test)) == (40, 8, 40, 8)
    assert {Path(e["label"]).name for e in dj["training"]} == train
    assert _cases(data / "imagesTr") == train == _cases(data / "labelsTr")
    assert _cases(data / "imagesTs") == test == _cases(data / "labelsTs")
    assert not train & test  # held-back cases are never trained on
    assert dj["labels"] == {"0": "background", "1": "Anterior", "2": "Posterior"}


def test_licence_and_attribution_sit_next_to_the_files_and_the_size_stays_small():
    data = demo_data_path()
    assert data.name == DEMO_DATASET
    for name in DEMO_NOTICES:
        assert (data / name).is_file(), name
    readme, licence = (data / "README.md").read_text(), (data / "LICENSE").read_text()
    for needed in ATTRIBUTION:
        assert needed in readme, needed
    assert "subset" in readme.lower() and "https://creativecommons.org/licenses/by-sa/4.0/" in readme
    assert "Attribution-ShareAlike 4.0 International" in licence
    assert "https://creativecommons.org/licenses/by-sa/4.0/legalcode" in licence
    size = sum(p.stat().st_size for p in data.rglob("*") if p.is_file())
    assert size < 4.5 * 1024**2


def test_demo_files_are_byte_identical_to_the_real_data(hippocampus_msd):
    data = demo_data_path()
    for folder, source in (("imagesTr", "imagesTr"), ("labelsTr", "labelsTr"), ("imagesTs", "imagesTr"),
                           ("labelsTs", "labelsTr")):  # fmt: skip
        for path in sorted((data / folder).glob("*.nii.gz")):
            assert path.read_bytes() == (hippocampus_msd / source / path.name).read_bytes(), path


def test_converted_demo_data_passes_verify(tmp_path):
    from segforge.io.convert_msd import convert_msd
    from segforge.io.verify import verify_folder

    summary = convert_msd(demo_data_path(), raw_root=tmp_path, num_processes=1, show_progress=False)
    assert summary.output.name == "Task004_Hippocampus_demo" and summary.converted == 40
    assert len(list((summary.output / "imagesTs").glob("*_0000.nii.gz"))) == 8
    report = verify_folder(summary.output, num_processes=1)
    assert report.ok, [p.line() for p in report.errors]
    assert report.warnings == [] and report.num_cases == 40


def test_the_wheel_contains_the_demo_data_and_its_licence(tmp_path):
    pytest.importorskip("setuptools")
    src = tmp_path / "checkout"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(REPO / name, src / name)
    shutil.copytree(REPO / "src" / "segforge", src / "src" / "segforge", ignore=shutil.ignore_patterns("__pycache__"))
    run = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"),
         str(src)], capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("segforge-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    prefix = f"segforge/demo/data/{DEMO_DATASET}"
    for notice in DEMO_NOTICES:
        assert f"{prefix}/{notice}" in names
    data = demo_data_path()
    expected = {f"{prefix}/{p.relative_to(data).as_posix()}" for p in data.rglob("*.nii.gz")}
    assert len(expected) == 96 and expected <= names
