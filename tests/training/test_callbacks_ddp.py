"""Callbacks under torchrun (2 ranks, gloo, CPU): events reach rank 0 only, unless a callback sets all_ranks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from segforge_tiny_task import TASK, fold_dir

PROBE = """
import json

from segforge import hookimpl
from segforge.training.callbacks import Callback


class RankProbe(Callback):
    name = "rank_probe"

    def _write(self, event):
        with (event.fold_folder / f"{self.name}_rank{event.rank}.jsonl").open("a") as f:
            f.write(json.dumps({"event": event.name, "epoch": event.epoch}) + "\\n")

    on_run_start = on_epoch_end = on_run_end = _write


class RankProbeAll(RankProbe):
    name = "rank_probe_all"
    all_ranks = True


@hookimpl
def segforge_register_callbacks(registry):
    registry.add(RankProbe)
    registry.add(RankProbeAll)
"""


@pytest.mark.slow  # a torchrun job of its own (~30-60 s on two busy cores)
def test_events_go_to_rank_0_unless_a_callback_asks_for_every_rank(task_env: Path, tmp_path: Path) -> None:
    (tmp_path / "segforge_rank_probe.py").write_text(PROBE)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
        "SEGFORGE_PLUGINS": "segforge_rank_probe",  # loaded like -p, in every rank
    }
    command = [sys.executable, "-m", "segforge", "train", "--task", TASK, "--fold", "0", "--num-gpus", "2",
               "--device", "cpu", "--epochs", "2", "--iterations-per-epoch", "2", "--set", "val_iterations=1",
               "--callback", "rank_probe", "--callback", "rank_probe_all"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    folder = fold_dir(task_env)
    probes = sorted(p.name for p in folder.glob("rank_probe*.jsonl"))
    assert probes == ["rank_probe_all_rank0.jsonl", "rank_probe_all_rank1.jsonl", "rank_probe_rank0.jsonl"]
    expected = [("run_start", 0), ("epoch_end", 0), ("epoch_end", 1), ("run_end", 2)]
    for name in probes:
        events = [json.loads(line) for line in (folder / name).read_text().splitlines()]
        assert [(e["event"], e["epoch"]) for e in events] == expected, name
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [c["name"] for c in manifest["callbacks"]] == ["rank_probe", "rank_probe_all"]
