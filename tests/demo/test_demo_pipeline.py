"""``segforge demo`` / ``run_demo``: the whole pipeline, resumed stage by stage, on a small copy of the data.

The network is shrunk and the schedule fixed (2 epochs of 1 iteration) so a run takes seconds;
the real demo (time budget, 48 cases) is the slow test at the end.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from segforge_demo_helpers import MINI_DATASET, TINY_TRAINING, make_mini_source, run_cli, shrink_planned_networks

from segforge.demo.pipeline import DemoOptions, run_demo

FOLD = Path("results") / MINI_DATASET / "3d_fullres" / "default__generic_unet__segforgePlans" / "fold_all"


@pytest.fixture(scope="module")
def mini_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mini_source(tmp_path_factory.mktemp("demo_source"))


def _options(out: Path, source: Path, **kwargs) -> DemoOptions:
    return DemoOptions(out=out, source=source, num_processes=1, show_progress=False, device="cpu",
                       **{**TINY_TRAINING, **kwargs})  # fmt: skip


def _statuses(result) -> dict[str, str]:
    return {stage.name: stage.status for stage in result.stages}


@pytest.fixture(scope="module")
def finished_demo(tmp_path_factory: pytest.TempPathFactory, mini_source: Path):
    """One demo folder: a run paused after its first epoch, then a run that resumed and finished it."""
    from segforge import plugins

    out = tmp_path_factory.mktemp("finished") / "demo"
    with pytest.MonkeyPatch.context() as patch:
        shrink_planned_networks(patch)
        plugins.reset_manager()
        paused = run_demo(_options(out, mini_source, stop_after_epochs=1))
        latest_after_pause = (out / FOLD / "checkpoint_latest.pt").is_file()
        resumed = run_demo(_options(out, mini_source))
        plugins.reset_manager()
    return out, paused, latest_after_pause, resumed


def test_demo_pauses_then_resumes_where_it_stopped(finished_demo):
    out, paused, latest_after_pause, resumed = finished_demo
    assert _statuses(paused) == {"convert-msd": "done", "verify": "done", "plan-and-preprocess": "done",
                                 "train": "paused"}  # fmt: skip
    assert not paused.complete and latest_after_pause
    assert _statuses(resumed) == {"convert-msd": "skipped", "verify": "skipped", "plan-and-preprocess": "skipped",
                                  "train": "done", "predict": "done", "evaluate": "done"}  # fmt: skip
    assert "continuing from checkpoint_latest.pt" in (out / FOLD / "training_log.txt").read_text()
    assert json.loads((out / FOLD / "manifest.json").read_text())["status"] == "finished"
    summary = json.loads((out / "evaluation" / "summary.json").read_text())
    assert sorted(c["case_id"] for c in summary["metric_per_case"]) == ["hippocampus_004", "hippocampus_057"]
    assert summary["labels"] == [1, 2]
    for name in ("report.html", "plots/hippocampus_004.png", "plots/hippocampus_057.png", "plots/dice_boxplot.png"):
        assert (out / "evaluation" / name).is_file(), name
    assert sorted(p.name for p in (out / "predictions").glob("*.nii.gz")) == ["hippocampus_004.nii.gz",
                                                                             "hippocampus_057.nii.gz"]  # fmt: skip


def test_a_finished_demo_is_not_redone_and_the_users_folders_are_untouched(finished_demo, mini_source, monkeypatch,
                                                                           tmp_path):  # fmt: skip
    out, _, _, resumed = finished_demo
    shrink_planned_networks(monkeypatch)
    monkeypatch.setenv("SEGFORGE_RESULTS", str(tmp_path / "users_results"))
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != "demo_state.json"}
    again = run_demo(_options(out, mini_source))
    assert set(_statuses(again).values()) == {"skipped"}
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # nothing rewritten
    assert again.summary.model_dump() == resumed.summary.model_dump()
    artifacts = dict(again.paths.artifacts())
    for what in ("plans", "checkpoint final", "progress.png", "predictions", "summary.json", "report.html"):
        assert artifacts[what].exists(), what
    assert os.environ["SEGFORGE_RESULTS"] == str(tmp_path / "users_results")
    assert "SEGFORGE_RAW" not in os.environ and not (tmp_path / "users_results").exists()


def test_predictions_of_another_model_are_redone(finished_demo, mini_source, monkeypatch, tmp_path):
    shrink_planned_networks(monkeypatch)
    out = tmp_path / "demo"
    shutil.copytree(finished_demo[0], out)  # keeps modification times: the early stages still count as done
    stale = out / "predictions" / "hippocampus_999.nii.gz"
    stale.write_bytes(b"from an older model")
    state = json.loads((out / "demo_state.json").read_text())
    state["stamps"]["predict"] = "another model"
    (out / "demo_state.json").write_text(json.dumps(state))
    again = run_demo(_options(out, mini_source))
    assert _statuses(again) == {"convert-msd": "skipped", "verify": "skipped", "plan-and-preprocess": "skipped",
                                "train": "skipped", "predict": "done", "evaluate": "done"}  # fmt: skip
    assert not stale.exists() and len(list((out / "predictions").glob("*.nii.gz"))) == 2


def test_cli_prints_dice_per_case_and_label_and_where_everything_is(finished_demo, mini_source, monkeypatch, capsys):
    out = finished_demo[0]
    shrink_planned_networks(monkeypatch)
    monkeypatch.setattr("segforge.demo.demo_data_path", lambda: mini_source)
    code, stdout, stderr = run_cli(capsys, "demo", "--out", str(out), "-np", "1", "--device", "cpu")
    assert code == 0, stderr
    summary = json.loads((out / "evaluation" / "summary.json").read_text())
    case = summary["metric_per_case"][0]
    row = next(line for line in stdout.splitlines() if line.strip().startswith(case["case_id"]))
    assert f"{case['metrics']['1']['dice']:.3f}" in row and f"{case['metrics']['2']['dice']:.3f}" in row
    assert "Anterior (1)" in stdout and "Posterior (2)" in stdout
    mean_row = next(line for line in stdout.splitlines() if line.strip().startswith("mean"))
    assert f"{summary['foreground_mean']['dice']:.3f}" in mean_row
    for artifact in ("report.html", "summary.json", "progress.png", "checkpoint_final.pt", "segforgePlans.json"):
        assert artifact in stdout, artifact
    assert "train: skipped" in stderr and "report.html" in stderr


def test_a_tiny_time_budget_gives_training_its_minutes_and_survives_a_pause(finished_demo, mini_source, monkeypatch,
                                                                           tmp_path):  # fmt: skip
    """--minutes is training time: the stages before training do not eat into it; a pause keeps the budget."""
    shrink_planned_networks(monkeypatch)
    out = tmp_path / "demo"
    shutil.copytree(finished_demo[0], out)  # converted and preprocessed already
    for folder in ("results", "predictions", "evaluation"):
        shutil.rmtree(out / folder)
    short = ["budget.iterations_per_epoch=2", "budget.val_iterations=1", "budget.final_val_iterations=1",
             "budget.precision=fp32"]  # fmt: skip
    # 12 s: the budget keeps ~3.5 s for the end and sizes from the first steps, so 6 s left one epoch on a busy CPU
    options = {"minutes": 0.2, "overrides": short, "epochs": None, "iterations_per_epoch": None}
    paused = run_demo(_options(out, mini_source, stop_after_epochs=1, **options))
    assert _statuses(paused)["train"] == "paused"
    budget = json.loads((out / FOLD / "manifest.json").read_text())["budget"]
    assert budget["budget_s"] == pytest.approx(12.0)
    finished = run_demo(_options(out, mini_source, **options))
    assert _statuses(finished)["train"] == "done" and finished.complete
    manifest = json.loads((out / FOLD / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["budget"]["budget_s"] == pytest.approx(12.0)
    notes: list[str] = []
    again = run_demo(_options(out, mini_source, **{**options, "minutes": 0.3}), say=notes.append)
    assert _statuses(again)["train"] == "skipped"  # a finished training is not redone for another budget...
    assert any("finished with a budget of 0.2 min, not 0.3" in note for note in notes)  # ...but says so


@pytest.mark.parametrize(("args", "message"), [
    (["--minutes", "0"], "--minutes 0.0: must be a positive number"),
    (["--network", "generic_unett"], "generic_unet"),
    (["-np", "0"], "-np must be at least 1"),
])  # fmt: skip
def test_cli_rejects_bad_options_before_doing_anything(tmp_path, capsys, args, message):
    code, _, stderr = run_cli(capsys, "demo", "--out", str(tmp_path / "demo"), *args)
    assert code == 2 and message in stderr
    assert not (tmp_path / "demo" / "raw").exists()


@pytest.mark.slow
def test_full_demo_on_cpu_reaches_mean_dice_above_half(tmp_path, capsys):
    """The real thing: 48 cases, 5 minutes of training on the CPU (about 7-10 minutes in all)."""
    code, stdout, stderr = run_cli(capsys, "demo", "--out", str(tmp_path / "demo"), "--device", "cpu")
    assert code == 0, stderr
    summary = json.loads((tmp_path / "demo" / "evaluation" / "summary.json").read_text())
    assert len(summary["metric_per_case"]) == 8
    assert summary["foreground_mean"]["dice"] > 0.5, stdout
