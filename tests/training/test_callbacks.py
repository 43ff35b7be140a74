"""Callbacks: selected per run, validated before anything is written, every event delivered, restored on
--continue, isolated when they raise, and never created when only installed. The example plugin
(examples/segforge-example-callback) is made to look pip-installed with FakePlugins."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from segforge_tiny_task import fold_dir, make_request

from segforge import plugins
from segforge.errors import ConfigError, PluginError
from segforge.testing import FakePlugins
from segforge.training.callbacks import EVENTS, Callbacks, SelectedCallback

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "segforge-example-callback" / "src"

RAISING = """
from segforge import hookimpl
from segforge.training.callbacks import Callback


class Flaky(Callback):
    name = "flaky"

    def on_epoch_end(self, event):
        raise RuntimeError("tracker server went away")


class Broken(Callback):
    name = "broken"

    def __init__(self, params):
        raise OSError("no such tracking URI")


@hookimpl
def segforge_register_callbacks(registry):
    registry.add(Flaky)
    registry.add(Broken)


@hookimpl
def segforge_register_trainers(registry):
    from segforge.training.trainer import DefaultTrainer

    class Boom(DefaultTrainer):
        name = "boom"

        def train_step(self, batch):
            if self.state.iteration == 1:
                raise RuntimeError("device-side assert triggered")
            return super().train_step(batch)

    registry.add(Boom)
"""


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The example callback plugin and a flaky one, looking pip-installed; a fresh plugin manager around."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    with FakePlugins(tmp_path / "fake_plugins", monkeypatch) as fake:
        (tmp_path / "fake_plugins").mkdir()
        fake.add_distribution(
            "segforge-example-callback", "0.1.0", {"example_callback": "segforge_example_callback.plugin"}
        )
        fake.install("segforge-flaky", RAISING, plugin="flaky")
        plugins.reset_manager()
        yield fake
    plugins.reset_manager()
    for name in [m for m in sys.modules if m.startswith("segforge_example_callback")]:
        sys.modules.pop(name)


def _train(*extra: str, callbacks: list[str] | None = None, resume: bool = False, stop_after_epochs: int | None = None,
           **request: object):  # fmt: skip
    from segforge.training.api import train

    request = make_request(*extra, callbacks=list(callbacks or []), resume=resume, **request)
    return train(request, stop_after_epochs=stop_after_epochs)


def _events(fold: Path) -> list[dict]:
    return [json.loads(line) for line in (fold / "events.jsonl").read_text().splitlines()]


def test_selected_callbacks_get_every_event_and_continue_restores_them(task_env, fakes):
    first = _train("callback.csv_metrics.file=m.csv", callbacks=["event_log", "csv_metrics"], stop_after_epochs=1)
    assert first.status == "paused"
    fold = fold_dir(task_env)
    events = _events(fold)
    assert [e["event"] for e in events][:2] == ["run_start", "train_step_end"]
    assert events[0]["resumed"] is False and events[0]["callbacks"] == ["event_log", "csv_metrics"]
    assert events[-1]["event"] == "run_end" and events[-1]["status"] == "paused"

    second = _train(resume=True)  # --continue with no --callback: the checkpoint's selection and params come back
    assert second.status == "finished"
    events = _events(fold)
    starts = [e for e in events if e["event"] == "run_start"]
    assert [s["resumed"] for s in starts] == [False, True] and starts[1]["epoch"] == 1
    assert set(e["event"] for e in events) == set(EVENTS)
    assert [e["epoch"] for e in events if e["event"] == "epoch_end"] == [0, 1]
    assert [e["loss"] for e in events if e["event"] == "train_step_end"] != []
    saved = [e["name"] for e in events if e["event"] == "checkpoint_saved"]
    assert "checkpoint_latest.pt" in saved and saved[-1] == "checkpoint_final.pt"

    manifest = json.loads((fold / "manifest.json").read_text())
    assert [(c["name"], c["params"], c["error"]) for c in manifest["callbacks"]] == [
        ("event_log", {"file": "events.jsonl", "skip_steps": False}, None),
        ("csv_metrics", {"file": "m.csv"}, None),
    ]
    assert manifest["callbacks"][1]["origin"]["plugin"] == "builtin.callbacks"
    with (fold / "m.csv").open() as f:
        rows = list(csv.DictReader(f))
    logs = json.loads((fold / "manifest.json").read_text())["progress"]
    assert [r["epoch"] for r in rows] == ["0", "1"] and logs["epochs"] == 2
    epoch_ends = [e for e in events if e["event"] == "epoch_end"]
    for row, event in zip(rows, epoch_ends, strict=True):
        assert float(row["train_loss"]) == pytest.approx(event["train_loss"])
        assert float(row["lr"]) == pytest.approx(event["lr"])
        assert int(row["iterations"]) == event["iterations"]
        assert {"pseudo_dice_1", "pseudo_dice_2"} <= set(row)


def test_installed_but_not_selected_changes_nothing(task_env, fakes):
    _train("epochs=1")
    fold = fold_dir(task_env)
    assert not (fold / "events.jsonl").exists() and not (fold / "metrics.csv").exists()
    assert json.loads((fold / "manifest.json").read_text())["callbacks"] == []


def test_a_raising_callback_is_isolated_named_in_the_log_and_the_manifest(task_env, fakes):
    result = _train("epochs=1", callbacks=["flaky", "event_log"])
    assert result.status == "finished"
    fold = fold_dir(task_env)
    warning = [line for line in (fold / "training_log.txt").read_text().splitlines() if "callback 'flaky'" in line]
    assert len(warning) == 1
    assert warning[0].endswith(
        "callback 'flaky' of plugin 'flaky' (segforge-flaky 1.0) failed in on_epoch_end: RuntimeError: "
        "tracker server went away; it receives no more events in this run"
    )
    records = {c["name"]: c for c in json.loads((fold / "manifest.json").read_text())["callbacks"]}
    assert records["flaky"]["error"] == "on_epoch_end: RuntimeError: tracker server went away"
    assert records["event_log"]["error"] is None and _events(fold)[-1]["status"] == "finished"


def test_a_run_that_fails_tells_its_callbacks_before_the_error_propagates(task_env, fakes):
    with pytest.raises(RuntimeError, match="device-side assert triggered"):
        _train(callbacks=["event_log"], trainer="boom")
    events = _events(fold_dir(task_env, trainer="boom"))
    assert [e["event"] for e in events] == ["run_start", "train_step_end", "run_end"]
    assert (events[-1]["status"], events[-1]["error"]) == ("failed", "RuntimeError: device-side assert triggered")


@pytest.mark.parametrize(
    ("callbacks", "items", "error", "message"),
    [
        (["csv_metric"], [], ConfigError, r"unknown callback 'csv_metric' \(available: broken, csv_metrics, event_log"),
        ([], ["callback.csv_metrics.file=x.csv"], ConfigError, r"callback 'csv_metrics' is not selected"),
        (["csv_metrics"], ["callback.csv_metrics.fille=x.csv"], ConfigError,
         r"--set callback.csv_metrics.fille: unknown callback 'csv_metrics' param 'fille' \(valid: file\)"),
        (["csv_metrics"], ["callback.csv_metrics.file=a/b.csv"], ConfigError,
         r"--set callback.csv_metrics.file: Value error, must be a plain file name"),
        (["event_log"], ["callback.event_log.skip_steps=maybe"], ConfigError,
         r"--set callback.event_log.skip_steps: Input should be a valid boolean"),
        (["csv_metrics"], ["callback.csv_metrics=1"], ConfigError, r"needs callback.NAME.KEY"),
        (["broken"], [], PluginError,
         r"callback 'broken' of plugin 'flaky' \(segforge-flaky 1.0\) failed to start: OSError: no such tracking URI"),
    ],
)  # fmt: skip
def test_bad_selection_fails_before_the_run_folder_exists(task_env, fakes, callbacks, items, error, message):
    with pytest.raises(error, match=message):
        _train(*items, callbacks=callbacks)
    assert not (task_env / "results").exists()


class _Recorder:
    def __init__(self, all_ranks: bool) -> None:
        self.all_ranks, self.seen = all_ranks, []

    def on_epoch_end(self, event) -> None:
        self.seen.append((event.name, event.rank, event.data["x"]))


def test_events_reach_other_ranks_only_when_a_callback_asks():
    entry = SimpleNamespace(name="rec", version="1", origin=None)
    main_only, everywhere = _Recorder(False), _Recorder(True)
    callbacks = Callbacks([SelectedCallback(entry, None, main_only), SelectedCallback(entry, None, everywhere)])
    for rank in (0, 1):
        trainer = SimpleNamespace(
            dist=SimpleNamespace(is_main=rank == 0, rank=rank),
            state=SimpleNamespace(epoch=3, iteration=30),
            context=SimpleNamespace(fold_folder="/f"),
        )
        callbacks.emit(trainer, "epoch_end", 2, x=rank)
    assert main_only.seen == [("epoch_end", 0, 0)]
    assert everywhere.seen == [("epoch_end", 0, 0), ("epoch_end", 1, 1)]


def _cli(*args: str) -> int:
    from segforge.cli.app import main

    plugins.reset_manager()
    try:
        main(list(args))
        return 0
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        plugins.reset_manager()


def test_cli_callback_flag_runs_csv_metrics_and_rejects_an_unknown_name(task_env, capsys):
    fast = ("--task", "9", "--fold", "0", "--epochs", "1", "--iterations-per-epoch", "2", "--set", "val_iterations=1")
    assert _cli("train", *fast, "--callback", "csv_metrix") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == "error: unknown callback 'csv_metrix' (available: csv_metrics)" and len(err) == 2
    assert not (task_env / "results").exists()

    assert _cli("train", *fast, "--callback", "csv_metrics", "--set", "threads=1") == 0
    fold = fold_dir(task_env)
    assert [r["epoch"] for r in csv.DictReader((fold / "metrics.csv").open())] == ["0"]
    manifest = json.loads((fold / "manifest.json").read_text())
    command = manifest["command"]  # rebuilt from the options: --continue would repeat the selection anyway
    assert command[command.index("--callback") + 1] == "csv_metrics"
