"""No code runs from data files: pickle payloads planted in place of every artifact are refused unexecuted.

The payload is an object whose unpickling creates a marker file. Each artifact reader must
refuse the planted file with a one-line SegforgeError naming it, and the marker must never
appear. A source scan keeps pickle out of segforge itself.
"""

from __future__ import annotations

import ast
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch

import segforge
from segforge.errors import SegforgeError

DATASET = "Task014_Pickle"
pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
SRC = Path(segforge.__file__).resolve().parent


class Payload:
    """Unpickling this calls ``open(marker, "w")``: the file appearing proves code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def pickled(marker: Path) -> bytes:
    return pickle.dumps({"network_weights": {}, "plans": Payload(marker)})


@pytest.fixture(scope="module")
def task(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny converted + planned + preprocessed task (``raw``, ``pre``), made in-process once."""
    from segforge import plugins
    from segforge.cli.app import main
    from segforge.testing.synthetic import make_task

    root = tmp_path_factory.mktemp("pickle_task")
    make_task(root / "raw" / DATASET, n_cases=4, shape=(12, 16, 14), seed=1)
    env = {"SEGFORGE_RAW": str(root / "raw"), "SEGFORGE_PREPROCESSED": str(root / "pre")}
    with mock.patch.dict(os.environ, env):
        plugins.reset_manager()
        with pytest.raises(SystemExit) as done:
            main(["plan-and-preprocess", "--task", "14", "-np", "1", "--configs", "3d_fullres"])
        plugins.reset_manager()
    assert done.value.code in (0, None)
    return root


@pytest.fixture
def work(task: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the task with SEGFORGE_* pointing at it."""
    shutil.copytree(task, tmp_path / "task")
    for name in ("raw", "pre", "results"):
        monkeypatch.setenv(f"SEGFORGE_{name.upper()}", str(tmp_path / "task" / name))
    monkeypatch.setenv("SEGFORGE_PREPROCESSED", str(tmp_path / "task" / "pre"))
    return tmp_path / "task"


def assert_refused(call: Callable[[], object], path: Path, marker: Path) -> SegforgeError:
    with pytest.raises(SegforgeError) as info:
        call()
    assert not marker.exists(), "the pickle payload was executed"
    assert path.name in info.value.message and "\n" not in info.value.message
    assert info.value.hint
    return info.value


# -- checkpoints -------------------------------------------------------------------------------
def _torch_saved_payload(path: Path, marker: Path) -> None:
    torch.save({"network_weights": {"w": torch.zeros(2)}, "format_version": 1, "extra": Payload(marker)}, path)


def _raw_pickle(path: Path, marker: Path) -> None:
    path.write_bytes(pickled(marker))


@pytest.mark.parametrize("plant", [_torch_saved_payload, _raw_pickle], ids=["torch-save", "raw-pickle"])
def test_checkpoint_payload_is_refused_by_every_reader(plant, tmp_path: Path):
    from segforge.inference.model_loading import read_checkpoint
    from segforge.training.checkpoint import CheckpointWarning, load_checkpoint, resumable_checkpoint
    from segforge.training.pretrained import load_pretrained_weights

    marker, path = tmp_path / "marker", tmp_path / "fold_0" / "checkpoint_final.pt"
    path.parent.mkdir()
    plant(path, marker)
    error = assert_refused(lambda: load_checkpoint(path), path, marker)
    assert "not a readable segforge checkpoint" in error.message
    assert_refused(lambda: read_checkpoint(path), path, marker)
    assert_refused(lambda: load_pretrained_weights(torch.nn.Linear(2, 2), path), path, marker)
    with pytest.warns(CheckpointWarning, match="checkpoint_final.pt"):
        assert resumable_checkpoint(path.parent) is None  # --continue starts over instead of unpickling
    assert not marker.exists()


def test_predict_with_a_pickled_checkpoint_exits_with_one_line(tmp_path: Path, capsys):
    from segforge.cli.app import main

    marker, fold = tmp_path / "marker", tmp_path / "model" / "fold_0"
    fold.mkdir(parents=True)
    _raw_pickle(fold / "checkpoint_final.pt", marker)
    (tmp_path / "in").mkdir()
    with pytest.raises(SystemExit) as info:
        main(["predict", "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", str(fold)])
    err = capsys.readouterr().err
    assert info.value.code != 0 and not marker.exists()
    assert "checkpoint_final.pt" in err and "Traceback" not in err
    assert err.lstrip().startswith("error:")


# -- JSON artifacts ----------------------------------------------------------------------------
def _case_folder(work: Path) -> Path:
    return work / "pre" / DATASET / "segforgePlans_3d_fullres"


def _readers(work: Path) -> dict[str, tuple[Path, Callable[[], object]]]:
    """artifact -> (its file, the segforge function that reads it)."""
    from segforge.config.dataset import load_dataset_json
    from segforge.config.jsonio import read_json
    from segforge.data.case_store import read_properties
    from segforge.data.splits import load_splits
    from segforge.inference.export import read_probabilities
    from segforge.planning import load_plans
    from segforge.planning.fingerprint import load_fingerprint
    from segforge.postprocessing.apply import load_decision

    pre, cases = work / "pre" / DATASET, _case_folder(work)
    files = {
        "dataset.json": work / "raw" / DATASET / "dataset.json",
        "plans": pre / "segforgePlans.json",
        "fingerprint": pre / "fingerprint.json",
        "splits": pre / "splits_final.json",
        "case properties": cases / "case_000.json",
        "manifest": work / "results" / "manifest.json",
        "probabilities sidecar": work / "preds" / "case_000.json",
        "postprocessing": work / "results" / "postprocessing.json",
    }
    readers = {
        "dataset.json": lambda: load_dataset_json(files["dataset.json"]),
        "plans": lambda: load_plans(files["plans"]),
        "fingerprint": lambda: load_fingerprint(files["fingerprint"]),
        "splits": lambda: load_splits(files["splits"]),
        "case properties": lambda: read_properties(cases, "case_000"),
        "manifest": lambda: read_json(files["manifest"]),
        "probabilities sidecar": lambda: read_probabilities(work / "preds" / "case_000.npz"),
        "postprocessing": lambda: load_decision(files["postprocessing"]),
    }
    return {name: (files[name], readers[name]) for name in files}


ARTIFACTS = ["dataset.json", "plans", "fingerprint", "splits", "case properties", "manifest",
             "probabilities sidecar", "postprocessing"]  # fmt: skip


@pytest.mark.parametrize("artifact", ARTIFACTS)
def test_pickle_in_place_of_a_json_artifact_is_refused(work: Path, artifact: str):
    marker = work / "marker"
    path, read = _readers(work)[artifact]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickled(marker))
    (work / "preds").mkdir(exist_ok=True)
    np.savez_compressed(work / "preds" / "case_000.npz", probabilities=np.zeros((3, 2, 2, 2), np.float32))
    error = assert_refused(read, path, marker)
    assert "not valid JSON" in error.message


def test_probabilities_npz_with_an_object_array_is_refused(work: Path):
    from segforge.inference.export import ProbabilitiesInfo, read_probabilities

    marker, npz = work / "marker", work / "preds" / "case_000.npz"
    npz.parent.mkdir()
    objects = np.array([Payload(marker)], dtype=object)
    np.savez(npz, probabilities=objects)  # numpy pickles object arrays into the archive
    info = ProbabilitiesInfo(case_id="case_000", labels=[0], shape=[1], image=_image_props(work),
                             plans_name="segforgePlans", configuration="3d_fullres")  # fmt: skip
    npz.with_suffix(".json").write_text(info.model_dump_json())
    error = assert_refused(lambda: read_probabilities(npz), npz, marker)
    assert "not a readable probabilities file" in error.message


def _image_props(work: Path):
    from segforge.data.case_store import read_properties

    return read_properties(_case_folder(work), "case_000").image


@pytest.mark.parametrize("suffix", ["", "_seg", "_locs"])
def test_case_npy_with_object_dtype_is_refused(work: Path, suffix: str):
    from segforge.data.case_store import read_case, read_class_locations

    marker = work / "marker"
    path = _case_folder(work) / f"case_000{suffix}.npy"
    np.save(path, np.array([Payload(marker)], dtype=object), allow_pickle=True)
    if suffix == "_locs":
        assert_refused(lambda: read_class_locations(_case_folder(work), "case_000"), path, marker)
    else:
        assert_refused(lambda: read_case(_case_folder(work), "case_000"), path, marker)
        assert_refused(lambda: read_case(_case_folder(work), "case_000", mmap=False), path, marker)


def test_commands_refuse_a_pickled_dataset_json_and_plans(work: Path, capsys):
    from segforge import plugins
    from segforge.cli.app import main

    marker = work / "marker"
    for planted, args in [
        (work / "raw" / DATASET / "dataset.json", ["verify", "--task", "14"]),
        (work / "pre" / DATASET / "segforgePlans.json", ["preprocess", "--task", "14", "-np", "1"]),
    ]:
        original = planted.read_bytes()
        planted.write_bytes(pickled(marker))
        plugins.reset_manager()
        with pytest.raises(SystemExit) as info:
            main(args)
        err = capsys.readouterr().err
        assert info.value.code != 0, err
        assert planted.name in err and "not valid JSON" in err and "Traceback" not in err
        assert not marker.exists()
        planted.write_bytes(original)


# -- the source itself -------------------------------------------------------------------------
FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}


def _violations(tree: ast.AST, rel: str) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"{rel}:{node.lineno}: import {a.name}" for a in node.names
                      if a.name.split(".")[0] in FORBIDDEN_MODULES]  # fmt: skip
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in FORBIDDEN_MODULES:
            found.append(f"{rel}:{node.lineno}: from {node.module} import")
        elif isinstance(node, ast.Call):
            func = ast.unparse(node.func)
            keywords = {k.arg: ast.unparse(k.value) for k in node.keywords}
            if keywords.get("allow_pickle") not in (None, "False"):
                found.append(f"{rel}:{node.lineno}: {func}(allow_pickle={keywords['allow_pickle']})")
            if func.endswith("torch.load") or func == "load" and "weights_only" in keywords:
                if keywords.get("weights_only") != "True":
                    found.append(f"{rel}:{node.lineno}: {func}() without weights_only=True")
            if func in ("eval", "exec") or func.endswith(("pickle.load", "pickle.loads")):
                found.append(f"{rel}:{node.lineno}: {func}()")
    return found


def test_segforge_source_never_unpickles():
    found = []
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 50
    for path in files:
        found += _violations(ast.parse(path.read_text(encoding="utf-8")), str(path.relative_to(SRC)))
    text_hits = [f"{p.relative_to(SRC)}" for p in files
                 if "weights_only=False" in p.read_text(encoding="utf-8")]  # fmt: skip
    assert found == [] and text_hits == []


def test_the_source_scan_catches_what_it_should():
    bad = "import pickle\nfrom dill import loads\nnp.load(p, allow_pickle=True)\ntorch.load(p)\n" \
          "torch.load(p, weights_only=False)\npickle.loads(b)\neval('1')\n"  # fmt: skip
    found = _violations(ast.parse(bad), "x.py")
    assert len(found) == 7, found
