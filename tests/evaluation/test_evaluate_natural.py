"""Evaluation reads with the image IO registered for the files' ending: PNG predictions evaluate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segforge.evaluation.evaluate_folder import evaluate_folder, reader_for_folder
from segforge.evaluation.plots import write_plots


def _pngs(folder: Path, arrays: dict[str, np.ndarray]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for case, array in arrays.items():
        Image.fromarray(array.astype(np.uint8)).save(folder / f"{case}.png")


def _disc(shift: int) -> np.ndarray:
    seg = np.zeros((20, 24), np.uint8)
    seg[5 + shift : 15 + shift, 6:16] = 1
    return seg


def test_png_folders_evaluate_without_naming_an_image_io(tmp_path: Path) -> None:
    _pngs(tmp_path / "ref", {"a": _disc(0), "b": _disc(0)})
    _pngs(tmp_path / "pred", {"a": _disc(0), "b": _disc(5)})
    summary = evaluate_folder(tmp_path / "ref", tmp_path / "pred", [1], output_file=tmp_path / "summary.json")
    dice = {c.case_id: c.metrics["1"].dice for c in summary.metric_per_case}
    assert dice == {"a": 1.0, "b": pytest.approx(0.5)}  # 50 of 100 pixels overlap
    assert (tmp_path / "summary.json").is_file()
    plots = write_plots(summary, tmp_path)  # reads the PNGs again through the same IO
    assert sorted(p.name for p in plots.cases.values()) == ["a.png", "b.png"]


def test_reader_for_folder_takes_the_ending_most_files_have(tmp_path: Path) -> None:
    import SimpleITK as sitk

    _pngs(tmp_path / "png", {"a": _disc(0), "b": _disc(1)})
    (tmp_path / "png" / "notes.txt").write_text("not an image")
    assert reader_for_folder(tmp_path / "png").name == "natural2d"
    (tmp_path / "nii").mkdir()
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((2, 3, 4), np.uint8)), str(tmp_path / "nii" / "a.nii.gz"))
    assert reader_for_folder(tmp_path / "nii").name == "simpleitk"
    assert reader_for_folder(tmp_path / "empty").name == "simpleitk"  # pair_files then names the problem


def test_postprocess_apply_reads_and_writes_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from segforge.cli.app import main
    from segforge.config.jsonio import save_model
    from segforge.postprocessing.decision import PostprocessingDecision

    seg = _disc(0)
    seg[0, 0] = 1  # a stray pixel the largest-component rule removes
    _pngs(tmp_path / "in", {"a": seg})
    decision = PostprocessingDecision(
        labels=[1], foreground_lcc=True, foreground_dice_before=0.5, foreground_dice_with_lcc=0.6,
        dice_before={"1": 0.5}, dice_after={"1": 0.6}, num_cases=1,
    )  # fmt: skip
    save_model(tmp_path / "pp.json", decision)
    try:
        main(["postprocess", "apply", "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--pp-json",
              str(tmp_path / "pp.json")])  # fmt: skip
    except SystemExit as exc:
        assert exc.code in (0, None), capsys.readouterr().err
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / "a.png")), _disc(0))
