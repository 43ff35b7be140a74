"""find-best-config on fabricated results trees: ranking, ensemble entry, instructions, skipped runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ensembling"))
from segforge_ensemble_cases import IO, fabricate_run, make_raw_task  # noqa: E402

from segforge.cli.app import main  # noqa: E402
from segforge.errors import UsageError  # noqa: E402
from segforge.evaluation.evaluate_folder import EvaluationSummary  # noqa: E402
from segforge.postprocessing.decision import PostprocessingDecision  # noqa: E402
from segforge.selection.best_config import determine_postprocessing, find_best_configuration  # noqa: E402
from segforge.selection.inference_instructions import InferenceInstructions, write_instructions  # noqa: E402

FOLDS = {"0": ["case_000", "case_001"], "1": ["case_002", "case_003"]}
RUN = "default__generic_unet__segforgePlans"
A = f"{RUN}__3d_fullres"
B = f"{RUN}__2d"
ENSEMBLE = f"ensemble___{B}___{A}"  # runs in discovery order: 2d before 3d_fullres


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """Raw Task099 with 4 cases; 3d_fullres (small mistakes) and 2d (bigger, different mistakes), 2 folds."""
    raw = tmp_path / "raw"
    results = tmp_path / "results"
    monkeypatch.setenv("SEGFORGE_RAW", str(raw))
    monkeypatch.setenv("SEGFORGE_RESULTS", str(results))
    task = make_raw_task(raw)
    dataset = results / "Task099_Fake"
    fabricate_run(dataset / "3d_fullres" / RUN, task / "labelsTr", FOLDS, (0.0, 0.15))
    fabricate_run(dataset / "2d" / RUN, task / "labelsTr", FOLDS, (0.5, 1.0))
    return dataset, task


def fold_dice(run: Path) -> list[float]:
    """Dice of every case/label of the fold summaries (to recompute the pooled mean by hand)."""
    values: dict[str, list[float]] = {"1": [], "2": []}
    for fold in FOLDS:
        s = EvaluationSummary.model_validate_json((run / f"fold_{fold}" / "validation" / "summary.json").read_text())
        for case in s.metric_per_case:
            for label in values:
                values[label].append(case.metrics[label].dice)
    return [float(np.mean(v)) for v in values.values()]


def test_ranking_pools_folds_and_the_pairwise_ensemble_wins(tree):
    dataset, task = tree
    result = find_best_configuration(dataset, folds=["0", "1"], num_processes=1, image_io=IO)
    names = [c.name for c in result.ranking]
    assert names == [ENSEMBLE, A, B]
    single = result.ranking[1]
    assert single.foreground_dice == pytest.approx(np.mean(fold_dice(dataset / "3d_fullres" / RUN)))
    assert len(single.summary.metric_per_case) == 4
    assert result.ranking[1].foreground_dice > result.ranking[2].foreground_dice
    # the two runs' mistakes are disjoint and confident where right: the average is the reference
    ens = result.best
    assert ens.kind == "ensemble" and ens.foreground_dice == pytest.approx(1.0)
    folder = dataset / "ensembles" / ENSEMBLE / "crossval_results_folds_0_1"
    assert ens.folder == folder
    assert sorted(p.name for p in folder.glob("*.nii.gz")) == [f"case_00{i}.nii.gz" for i in range(4)]
    on_disk = EvaluationSummary.model_validate_json((folder / "summary.json").read_text())
    assert on_disk.foreground_mean["dice"] == pytest.approx(1.0)
    assert on_disk.reference_folder == str(task / "labelsTr")
    seg, props = IO.read_seg(folder / "case_002.nii.gz")
    ref, ref_props = IO.read_seg(task / "labelsTr" / "case_002.nii.gz")
    np.testing.assert_array_equal(seg, ref)
    assert props.geometry_differences(ref_props) == []
    again = find_best_configuration(dataset, folds=["0", "1"], image_io=IO)  # ensembles/ is not a configuration
    assert [c.name for c in again.ranking] == names and again.skipped == []


def test_instructions_name_the_ensemble_and_its_commands(tree):
    dataset, _ = tree
    result = find_best_configuration(dataset, folds=["0", "1"], image_io=IO)
    path, instructions = write_instructions(result)
    assert path == dataset / "inference_instructions.json"
    loaded = InferenceInstructions.model_validate_json(path.read_text())
    assert loaded == instructions
    assert loaded.dataset == "Task099_Fake" and loaded.folds == ["0", "1"]
    assert loaded.best.kind == "ensemble" and [r.configuration for r in loaded.best.runs] == ["2d", "3d_fullres"]
    assert [e.name for e in loaded.ranking][1:] == [A, B]
    assert loaded.ranking[1].dice_per_label.keys() == {"1", "2"} and loaded.ranking[1].num_cases == 4
    common = "--task 99 --config {} --trainer default --network generic_unet --plans segforgePlans --folds 0 1"
    assert loaded.commands == [
        f"segforge predict -i INPUT_FOLDER -o OUTPUT_FOLDER_MODEL_1 {common.format('2d')} --save-probabilities",
        f"segforge predict -i INPUT_FOLDER -o OUTPUT_FOLDER_MODEL_2 {common.format('3d_fullres')} --save-probabilities",
        "segforge ensemble -i OUTPUT_FOLDER_MODEL_1 OUTPUT_FOLDER_MODEL_2 -o OUTPUT_FOLDER",
    ]
    text = (dataset / "inference_instructions.txt").read_text()
    assert f"Best configuration for Task099_Fake (folds 0 1): {ENSEMBLE}" in text
    assert "Cross-validation mean foreground Dice: 1.0000 over 4 case(s)" in text
    assert loaded.commands[2] in text


def test_postprocessing_is_determined_for_the_winner_and_applied_after_ensembling(tree):
    dataset, _ = tree
    result = find_best_configuration(dataset, folds=["0", "1"], image_io=IO)
    pp = determine_postprocessing(result.best, result.folds, IO)
    assert pp == dataset / "ensembles" / ENSEMBLE / "postprocessing.json"
    decision = PostprocessingDecision.model_validate_json(pp.read_text())
    assert decision.labels == [1, 2] and decision.num_cases == 4
    assert decision.foreground_dice_before == pytest.approx(1.0)  # the ensemble is already perfect
    _, instructions = write_instructions(result)
    assert instructions.postprocessing_file == str(pp)
    assert instructions.commands[-2:] == [
        "segforge ensemble -i OUTPUT_FOLDER_MODEL_1 OUTPUT_FOLDER_MODEL_2 -o OUTPUT_FOLDER_ENSEMBLE",
        f"segforge postprocess apply -i OUTPUT_FOLDER_ENSEMBLE -o OUTPUT_FOLDER --pp-json {pp}",
    ]
    single = find_best_configuration(dataset, folds=["0", "1"], ensembles=False, image_io=IO)
    pp = determine_postprocessing(single.best, single.folds, IO)
    assert pp == dataset / "3d_fullres" / RUN / "postprocessing.json"
    _, instructions = write_instructions(single)
    assert len(instructions.commands) == 1  # predict applies the run's postprocessing.json by itself
    text = (dataset / "inference_instructions.txt").read_text()
    assert f"Postprocessing {pp} is applied by segforge predict itself." in text


def test_runs_lacking_folds_or_probabilities_are_skipped_with_the_reason(tree):
    dataset, task = tree
    partial = dataset / "3d_lowres" / RUN
    fabricate_run(partial, task / "labelsTr", {"0": FOLDS["0"]}, (0.0, 0.1))
    no_probs = dataset / "3d_cascade_fullres" / "other__generic_unet__segforgePlans"
    fabricate_run(no_probs, task / "labelsTr", FOLDS, (0.0, 0.05), probabilities=False)
    result = find_best_configuration(dataset, folds=["0", "1"], image_io=IO)
    skipped = {name: reason for name, _, reason in result.skipped}
    assert skipped[f"{RUN}__3d_lowres"].startswith("fold_1 is not trained (")
    no_probs_id = "other__generic_unet__segforgePlans__3d_cascade_fullres"
    reason = f"{no_probs_id} has no validation probabilities (train with --npz)"
    assert skipped[f"ensemble___{A}___{no_probs_id}"] == reason
    # the run without probabilities is still ranked as a single model (it has the best single score)
    singles = [c.name for c in result.ranking if c.kind == "single"]
    assert singles == [no_probs_id, A, B]
    (dataset / "2d" / RUN / "fold_1" / "validation" / "summary.json").unlink()
    result = find_best_configuration(dataset, folds=["0", "1"], trainers=["default"], ensembles=False, image_io=IO)
    assert [c.name for c in result.ranking] == [A]
    assert dict((n, r) for n, _, r in result.skipped)[B].startswith("fold_1 has no validation/summary.json (")


def test_single_winner_and_no_usable_run(tree):
    dataset, _ = tree
    result = find_best_configuration(dataset, folds=["0"], configurations=["2d", "3d_fullres"], ensembles=False,
                                     image_io=IO)  # fmt: skip
    _, instructions = write_instructions(result)
    assert instructions.best.name == A and instructions.commands == [
        "segforge predict -i INPUT_FOLDER -o OUTPUT_FOLDER --task 99 --config 3d_fullres --trainer default "
        "--network generic_unet --plans segforgePlans --folds 0"
    ]
    with pytest.raises(UsageError, match=r"no run has validation for folds 0 1 2: .*fold_2 is not trained"):
        find_best_configuration(dataset, folds=["0", "1", "2"], image_io=IO)


def test_cli_prints_the_ranking_and_writes_instructions(tree, capsys):
    dataset, _ = tree
    with pytest.raises(SystemExit) as exit_info:
        main(["find-best-config", "--task", "99", "--folds", "0", "1", "--configs", "2d", "3d_fullres", "-np", "1"])
    out, err = capsys.readouterr()
    assert exit_info.value.code in (None, 0), err
    assert ENSEMBLE in out and "1.0000" in out
    assert "segforge ensemble -i OUTPUT_FOLDER_MODEL_1 OUTPUT_FOLDER_MODEL_2 -o OUTPUT_FOLDER_ENSEMBLE" in err
    assert f"postprocessing for {ENSEMBLE}: " in err and "segforge postprocess apply -i OUTPUT_FOLDER_ENSEMBLE" in err
    data = json.loads((dataset / "inference_instructions.json").read_text())
    assert data["best"]["kind"] == "ensemble" and data["folds"] == ["0", "1"]
    with pytest.raises(SystemExit) as exit_info:
        main(["find-best-config", "--task", "99", "--folds", "0", "x"])
    assert exit_info.value.code == 2 and "invalid fold 'x'" in capsys.readouterr().err


def test_without_the_raw_dataset_the_summaries_reference_files_are_used(tree, monkeypatch, tmp_path):
    dataset, task = tree
    monkeypatch.setenv("SEGFORGE_RAW", str(tmp_path / "elsewhere"))
    result = find_best_configuration(dataset, folds=["0", "1"], image_io=IO)
    assert result.best.name == ENSEMBLE and result.best.foreground_dice == pytest.approx(1.0)
    refs = {Path(c.reference_file) for c in result.best.summary.metric_per_case}
    assert refs == {task / "labelsTr" / f"case_00{i}.nii.gz" for i in range(4)}
