"""A re-run removes what a killed writer left (``.<name>.<random>.tmp``), and only that."""

from __future__ import annotations

from pathlib import Path

from crash_helpers import plant_temporary

from segforge.atomic import atomic_write_text, remove_interrupted_writes


def test_remove_interrupted_writes_removes_only_the_temporaries_of_that_file(tmp_path: Path):
    final = tmp_path / "case_1.nii.gz"
    mine = [plant_temporary(final, ".nii.gz"), plant_temporary(final)]
    others = [
        plant_temporary(tmp_path / "case_10.nii.gz", ".nii.gz"),  # another case whose name starts the same
        tmp_path / ".case_1.nii.gz",  # a hidden file that is not a temporary
        tmp_path / "case_1.nii.gz",
    ]
    for path in others[1:]:
        path.write_text("keep")
    assert remove_interrupted_writes(final) == 2
    assert not any(p.exists() for p in mine) and all(p.exists() for p in others)
    assert remove_interrupted_writes(tmp_path / "missing" / "x.json") == 0


def test_resuming_removes_a_half_written_checkpoint(tmp_path: Path):
    from segforge.training.checkpoint import LATEST, resumable_checkpoint

    leftover = plant_temporary(tmp_path / LATEST)
    atomic_write_text(tmp_path / "training_log.txt", "kept\n")
    assert resumable_checkpoint(tmp_path) is None  # nothing complete to resume from
    assert not leftover.exists() and (tmp_path / "training_log.txt").read_text() == "kept\n"
