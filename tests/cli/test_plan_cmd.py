"""``segforge fingerprint | plan | plan-and-preprocess`` through the real entry point."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from segforge.testing.synthetic import make_task


@pytest.fixture(autouse=True)
def _fewer_intensity_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    """nnU-Net's 10^8 foreground draws cost ~1 s per fingerprint; the commands' behaviour does not depend on it."""
    from segforge.planning import intensity

    monkeypatch.setattr(intensity, "TOTAL_FOREGROUND_SAMPLES", 10**5)


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    raw, pre = tmp_path / "raw", tmp_path / "preprocessed"
    monkeypatch.setenv("SEGFORGE_RAW", str(raw))
    monkeypatch.setenv("SEGFORGE_PREPROCESSED", str(pre))
    return raw, pre


@pytest.fixture
def task(folders: tuple[Path, Path]) -> Path:
    raw, _ = folders
    return make_task(raw / "Task007_Ellipses", n_cases=4, shape=(12, 16, 14), spacing=(2.0, 1.0, 1.5))


def test_plan_and_preprocess_end_to_end_then_rerun_resumes(task: Path, folders, run_main):
    _, pre = folders
    code, out, err = run_main(["plan-and-preprocess", "--task", "7", "-np", "1", "--verify-dataset-integrity"])
    assert code == 0, err
    out_dir = pre / "Task007_Ellipses"
    plans = json.loads((out_dir / "segforgePlans.json").read_text())
    conf = plans["configurations"]["3d_fullres"]
    assert conf["spacing"] == [2.0, 1.0, 1.5] and conf["batch_size"] == 2
    assert list(plans["configurations"]) == ["2d", "3d_fullres"]
    assert "segforgePlans for Task007_Ellipses" in out
    assert " 3d_fullres " in out and " x ".join(str(p) for p in conf["patch_size"]) in out
    assert "dataset OK: 4 cases" in err and "wrote fingerprint" in err and "wrote plans" in err
    for ident in ("segforgePlans_3d_fullres", "segforgePlans_2d"):
        assert sorted(p.name for p in (out_dir / ident).glob("*.json")) == [f"case_00{i}.json" for i in range(4)]
    data = np.load(out_dir / "segforgePlans_3d_fullres" / "case_000.npy", allow_pickle=False)
    assert data.shape[0] == 1 and data.dtype == np.float32
    before = {p: p.stat().st_mtime_ns for p in out_dir.rglob("*") if p.is_file()}

    code, out, err = run_main(["plan-and-preprocess", "--task", "7", "-np", "1"])
    assert code == 0, err
    assert "reused fingerprint" in err and "kept identical plans" in err
    assert "0 case(s) done, 8 already complete" in err
    assert {p: p.stat().st_mtime_ns for p in out_dir.rglob("*") if p.is_file()} == before


def test_fingerprint_command_prints_a_summary(task: Path, folders, run_main):
    _, pre = folders
    code, out, err = run_main(["fingerprint", "--task", "Task007_Ellipses", "-np", "1"])
    assert code == 0, err
    assert (pre / "Task007_Ellipses" / "fingerprint.json").is_file()
    assert "fingerprint of Task007_Ellipses" in out
    assert "median spacing" in out and "2 x 1 x 1.5" in out
    code, _, err = run_main(["fingerprint", "--task", "7", "-np", "1"])
    assert code == 0 and "reused fingerprint" in err
    code, _, err = run_main(["fingerprint", "--task", "7", "-np", "1", "--clean"])
    assert code == 0 and "wrote fingerprint" in err


def test_changed_settings_need_overwrite_plans(task: Path, folders, run_main):
    assert run_main(["plan", "--task", "7", "-np", "1"])[0] == 0
    code, out, err = run_main(["plan", "--task", "7", "--gpu-memory-gb", "4"])
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert lines[-2].startswith("error: ") and "segforgePlans.json exists and differs from the new plans" in lines[-2]
    assert "(at planner_params.gpu_memory_gb)" in lines[-2]
    assert lines[-1].startswith("hint: pass --overwrite-plans")
    code, _, err = run_main(["plan", "--task", "7", "--gpu-memory-gb", "4", "--overwrite-plans"])
    assert code == 0 and "wrote plans" in err


def test_plan_for_another_network_and_selected_configs(task: Path, folders, run_main):
    _, pre = folders
    code, out, err = run_main(["plan", "--task", "7", "--network", "residual_unet", "--configs", "3d_fullres"])
    assert code == 0, err
    plans = json.loads((pre / "Task007_Ellipses" / "segforgePlans__residual_unet.json").read_text())
    assert list(plans["configurations"]) == ["3d_fullres"]
    assert plans["configurations"]["3d_fullres"]["network"]["name"] == "residual_unet"
    assert "residual_unet" in out
    # nnU-Net style: several names after one --configs
    code, out, err = run_main(["plan", "--task", "7", "--configs", "2d", "3d_fullres", "--overwrite-plans"])
    assert code == 0, err
    assert list(json.loads((pre / "Task007_Ellipses" / "segforgePlans.json").read_text())["configurations"]) == [
        "2d",
        "3d_fullres",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plan", "--task", "7", "--network", "generic_unte"], "error: unknown network 'generic_unte'"),
        (["plan", "--task", "7", "--planner", "nnunet"], "error: unknown planner 'nnunet' (available: default)"),
        (["plan", "--task", "7", "--configs", "3d"], "error: unknown configuration '3d'"),
        (["plan-and-preprocess", "--task", "7", "-np", "0"], "error: -np must be at least 1, got 0"),
        (["plan", "--task", "8"], "error: no task 8 in"),
        (["plan", "--task", "7", "stray"], "error: unexpected argument 'stray'"),
    ],
)
def test_usage_errors_are_one_line(task: Path, folders, run_main, args, message):
    code, out, err = run_main(args)
    assert code == 2 and out == ""
    assert err.startswith(message) or f"\n{message}" in err
    assert all(line.startswith(("error: ", "hint: ")) for line in err.strip().splitlines()[-2:])


def test_no_pp_only_plans(task: Path, folders, run_main):
    _, pre = folders
    code, _, err = run_main(["plan-and-preprocess", "--task", "7", "-np", "1", "--no-pp"])
    assert code == 0, err
    assert sorted(p.name for p in (pre / "Task007_Ellipses").iterdir()) == ["fingerprint.json", "segforgePlans.json"]


# -- real data ------------------------------------------------------------------------------------
def link_hippocampus(msd: Path, raw_root: Path, n_cases: int) -> Path:
    """A segforge Task folder (v1 layout) of the first ``n_cases`` hippocampus cases, as symlinks."""
    info = json.loads((msd / "dataset.json").read_text())
    names = sorted(p.name for p in (msd / "imagesTr").glob("hippocampus_*.nii.gz"))[:n_cases]
    task = raw_root / "Task004_Hippocampus"
    (task / "imagesTr").mkdir(parents=True)
    (task / "labelsTr").mkdir()
    for name in names:
        (task / "imagesTr" / name.replace(".nii.gz", "_0000.nii.gz")).symlink_to(msd / "imagesTr" / name)
        (task / "labelsTr" / name).symlink_to(msd / "labelsTr" / name)
    info.update(
        numTraining=len(names),
        training=[{"image": f"./imagesTr/{n}", "label": f"./labelsTr/{n}"} for n in names],
        test=[],
    )
    (task / "dataset.json").write_text(json.dumps(info))
    return task


def test_real_hippocampus_cases_end_to_end(hippocampus_msd: Path, folders, run_main):
    raw, pre = folders
    link_hippocampus(hippocampus_msd, raw, 12)
    code, out, err = run_main(["plan-and-preprocess", "--task", "4", "-np", "2"])
    assert code == 0, err
    plans = json.loads((pre / "Task004_Hippocampus" / "segforgePlans.json").read_text())
    fp = json.loads((pre / "Task004_Hippocampus" / "fingerprint.json").read_text())
    conf = plans["configurations"]["3d_fullres"]
    assert conf["spacing"] == [1.0, 1.0, 1.0] and conf["normalization"] == ["zscore"]
    median = np.median([c["shape_after_crop"] for c in fp["cases"]], axis=0)
    assert conf["median_image_size_in_voxels"] == list(median)
    assert all(p % 8 == 0 and p >= m for p, m in zip(conf["patch_size"], median, strict=True))
    assert conf["network"]["params"]["strides"] == [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2]]
    assert fp["labels"] == {"background": 0, "Anterior": 1, "Posterior": 2}
    folder = pre / "Task004_Hippocampus" / "segforgePlans_3d_fullres"
    for case in fp["cases"]:
        data = np.load(folder / f"{case['case_id']}.npy", mmap_mode="r", allow_pickle=False)
        assert list(data.shape[1:]) == case["shape_after_crop"]  # spacing is already the target


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_sigkill_midway_then_rerun_gives_the_uninterrupted_result(hippocampus_msd: Path, tmp_path: Path):
    raw = tmp_path / "raw"
    link_hippocampus(hippocampus_msd, raw, 60)
    env = {**os.environ, "SEGFORGE_RAW": str(raw)}
    cmd = [sys.executable, "-m", "segforge", "plan-and-preprocess", "--task", "4", "-np", "1"]

    reference = tmp_path / "reference"
    subprocess.run(cmd, env={**env, "SEGFORGE_PREPROCESSED": str(reference)}, check=True, capture_output=True)

    killed = tmp_path / "killed"
    data = killed / "Task004_Hippocampus" / "segforgePlans_2d"
    proc = subprocess.Popen(
        cmd, env={**env, "SEGFORGE_PREPROCESSED": str(killed)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and len(list(data.glob("*.json"))) < 5:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_at_kill = len(list(data.glob("*.json")))
    if not 0 < done_at_kill < 60:
        pytest.skip(f"could not stop the run midway ({done_at_kill} of 60 cases were complete)")
    subprocess.run(cmd, env={**env, "SEGFORGE_PREPROCESSED": str(killed)}, check=True, capture_output=True)
    assert _snapshot(killed) == _snapshot(reference)


def test_plans_from_another_segforge_version_with_the_same_decisions_are_kept(task: Path, folders, run_main):
    _, pre = folders
    assert run_main(["plan", "--task", "7", "-np", "1"])[0] == 0
    path = pre / "Task007_Ellipses" / "segforgePlans.json"
    data = json.loads(path.read_text())
    data["segforge_version"] = "0.0.1"
    path.write_text(json.dumps(data))
    code, _, err = run_main(["plan", "--task", "7"])
    assert code == 0 and "kept identical plans" in err
    assert json.loads(path.read_text())["segforge_version"] == "0.0.1"


def test_lowres_and_fullres_worker_counts_go_to_separate_runs(monkeypatch):
    from types import SimpleNamespace

    from segforge.planning import workflow
    from segforge.preprocessing import dataset_runner

    calls = []

    def fake_preprocess(raw, plans, names, root, workers):
        calls.append((list(names), workers))
        return SimpleNamespace(done=1, skipped=0, seconds=0.0, folder=root)

    monkeypatch.setattr(dataset_runner, "preprocess_dataset", fake_preprocess)
    plans = SimpleNamespace(configurations=dict.fromkeys(["2d", "3d_fullres", "3d_lowres", "3d_cascade_fullres"]))
    workflow.preprocess_step(None, plans, ["2d", "3d_fullres", "3d_lowres"], 1, 3, report=lambda text: None)
    assert calls == [(["3d_lowres"], 1), (["2d", "3d_fullres"], 3)]
    calls.clear()
    workflow.preprocess_step(None, plans, ["2d", "3d_lowres"], 2, 2, report=lambda text: None)
    assert calls == [(["2d", "3d_lowres"], 2)]


def test_network_params_fixed_at_planning_time(task: Path, folders, run_main):
    """--network-param replaces the builder's proposal in every configuration; patch and batch follow it."""
    _, pre = folders
    code, _, err = run_main(
        ["plan", "--task", "7", "-np", "1", "--network-param", "nonlin=relu", "--network-param", "dropout=0.1"]
    )
    assert code == 0, err
    plans = json.loads((pre / "Task007_Ellipses" / "segforgePlans.json").read_text())
    for conf in plans["configurations"].values():
        assert conf["network"]["params"]["nonlin"] == "relu" and conf["network"]["params"]["dropout"] == 0.1


def test_unknown_network_param_is_one_line_error(task: Path, folders, run_main):
    code, _, err = run_main(["plan", "--task", "7", "-np", "1", "--network-param", "nonlinn=relu"])
    assert code != 0
    assert "network 'generic_unet' params: nonlinn" in err and "Traceback" not in err
    code, _, err = run_main(["plan", "--task", "7", "-np", "1", "--network-param", "nonlin"])
    assert code != 0 and "--network-param 'nonlin' is not KEY=VALUE" in err
