"""import-dataset: patterns with fields -> a verified raw Task folder; label maps, masks, regions, errors, re-runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from segforge.errors import ConfigError, UsageError
from segforge.io.dataset_import import CaseFiles, import_dataset, parse_label_map, region_order
from segforge.io.import_patterns import FilePattern, match_cases
from segforge.io.layouts import open_raw_dataset

SHAPE = (6, 10, 8)


def _write(path: Path, array: np.ndarray, spacing=(1.5, 1.0, 2.0)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    sitk.WriteImage(image, str(path), True)
    return path


def _read(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def _brats_like(root: Path, cases=(("train", "p1"), ("train", "p2"), ("test", "p3"))) -> Path:
    """Case folders per split with two z-scored channels (background -2, not 0), a mask and labels 0-4."""
    rng = np.random.default_rng(0)
    for split, case in cases:
        mask = np.zeros(SHAPE, np.uint8)
        mask[1:5, 2:8, 2:7] = 1
        seg = np.zeros(SHAPE, np.float32)
        seg[2:4, 3:6, 3:5] = rng.integers(1, 5, (2, 3, 2))
        seg[2, 3, 3], seg[3, 5, 4] = 1, 4
        for channel in ("Flair", "T1c"):
            data = np.where(mask > 0, rng.normal(0, 1, SHAPE), -2.0).astype(np.float32)
            _write(root / split / case / f"{channel}_norm.nii.gz", data)
        _write(root / split / case / "brainmask.nii.gz", mask)
        _write(root / split / case / "seg.nii.gz", seg)
    return root


BRATS_ARGS = dict(
    channels={"FLAIR": "{split}/{case}/Flair_norm.nii.gz", "T1c": "{split}/{case}/T1c_norm.nii.gz"},
    labels="{split}/{case}/seg.nii.gz",
    test="split=test",
)
REGIONS = {"whole": [1, 2, 3, 4], "core": [1, 3, 4], "enhancing": [4]}


def _cases(root: Path, **kw) -> list[CaseFiles]:
    args = {**BRATS_ARGS, **kw}
    return [CaseFiles(*m) for m in match_cases(root, args["channels"], args["labels"], args.get("mask"), args["test"])]


def test_pattern_fields_wildcards_and_repeated_fields() -> None:
    p = FilePattern.parse("{split}/images/{case}_{split}.tif", "channel RGB")
    assert p.fields == ("split", "case") and p.glob == "*/images/*_*.tif"
    assert p.match("training/images/21_training.tif") == {"split": "training", "case": "21"}
    assert p.match("training/images/21_test.tif") is None  # a repeated field must agree
    q = FilePattern.parse("brain{case:\\d+}_*.nrrd", "channel T1")
    assert q.match("brain12_image.nrrd") == {"case": "12"} and q.match("brainX_image.nrrd") is None
    for bad, expect in (("/abs/{case}", "relative"), ("**/{case}.nii", "not supported"), ("{case", "unmatched")):
        with pytest.raises(UsageError, match=expect):
            FilePattern.parse(bad, "labels")


def test_brats_like_layout_with_mask_and_regions(tmp_path: Path) -> None:
    src = _brats_like(tmp_path / "src")
    cases = _cases(src, mask="{split}/{case}/brainmask.nii.gz")
    assert [(c.case_id, c.test) for c in cases] == [("p1", False), ("p2", False), ("p3", True)]
    summary = import_dataset(cases, "Task501_BraTSLike", regions=REGIONS, mode="link", raw_root=tmp_path / "raw")
    out = tmp_path / "raw" / "Task501_BraTSLike"
    assert (summary.output, summary.training, summary.test, summary.written) == (out, 2, 1, 9)
    dj = json.loads((out / "dataset.json").read_text())
    assert dj["channel_names"] == {"0": "FLAIR", "1": "T1c"} and dj["regions_class_order"] == [2, 1, 4]
    assert dj["labels"] == {"background": 0, **REGIONS} and (dj["numTraining"], dj["file_ending"]) == (2, ".nii.gz")
    # masked channels are converted files: 0 outside the mask, the source values inside
    image = _read(out / "imagesTr" / "p1_0001.nii.gz")
    source, mask = _read(src / "train/p1/T1c_norm.nii.gz"), _read(src / "train/p1/brainmask.nii.gz") > 0
    assert not (out / "imagesTr" / "p1_0001.nii.gz").is_symlink()
    np.testing.assert_array_equal(image[mask], source[mask])
    assert np.all(image[~mask] == 0)
    # unconverted labels are absolute symlinks to the source; the test case's label goes to labelsTs
    assert os.readlink(out / "labelsTr" / "p2.nii.gz") == str((src / "train/p2/seg.nii.gz").resolve())
    assert (out / "labelsTs" / "p3.nii.gz").is_symlink() and (out / "imagesTs" / "p3_0000.nii.gz").is_file()
    ds = open_raw_dataset(out)
    assert [c.case_id for c in ds.cases] == ["p1", "p2"] and [c.case_id for c in ds.test_cases] == ["p3"]
    assert not (tmp_path / "raw" / ".Task501_BraTSLike.importing").exists()


def test_rerun_is_a_no_op_and_other_spec_is_refused(tmp_path: Path) -> None:
    src = _brats_like(tmp_path / "src")
    kw = dict(regions=REGIONS, raw_root=tmp_path / "raw")
    import_dataset(_cases(src), "Task501_B", **kw)
    out = tmp_path / "raw" / "Task501_B"
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    again = import_dataset(_cases(src), "Task501_B", **kw)
    assert (again.written, again.skipped) == (0, 9)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    with pytest.raises(UsageError, match="already exists with a different import"):
        import_dataset(_cases(src), "Task501_B", mode="link", **kw)
    import_dataset(_cases(src), "Task501_B", mode="link", overwrite=True, **kw)
    assert (out / "labelsTr" / "p1.nii.gz").is_symlink()


def test_interrupted_import_resumes_in_its_staging_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from segforge.io import import_files

    src = _brats_like(tmp_path / "src")
    real, calls = import_files._copy, []

    def dies_on_fourth(s: Path, d: Path) -> None:
        calls.append(d)
        if len(calls) == 4:
            raise KeyboardInterrupt
        real(s, d)

    monkeypatch.setattr(import_files, "_copy", dies_on_fourth)
    with pytest.raises(KeyboardInterrupt):
        import_dataset(_cases(src), "Task501_B", regions=REGIONS, raw_root=tmp_path / "raw", num_processes=1)
    staging = tmp_path / "raw" / ".Task501_B.importing"
    assert staging.is_dir() and not (tmp_path / "raw" / "Task501_B").exists()
    monkeypatch.setattr(import_files, "_copy", real)
    summary = import_dataset(_cases(src), "Task501_B", regions=REGIONS, raw_root=tmp_path / "raw", num_processes=1)
    assert (summary.written, summary.skipped) == (6, 3) and not staging.exists()


def test_label_map_converts_and_refuses_unmapped_values(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for case in ("01", "02"):
        _write(src / "images" / f"{case}_img.nii.gz", np.ones(SHAPE, np.float32))
        seg = np.zeros(SHAPE, np.uint8)
        seg[2:4, 2:5, 2:5] = 255
        _write(src / "manual" / f"{case}_manual.nii.gz", seg)
    matched = match_cases(src, {"RGB": "images/{case}_img.nii.gz"}, "manual/{case}_manual.nii.gz")
    cases = [CaseFiles(*m) for m in matched]
    import_dataset(cases, "Task502_V", labels={"vessel": 1}, label_map=["0=0,255=1"], raw_root=tmp_path / "raw")
    label = _read(tmp_path / "raw" / "Task502_V" / "labelsTr" / "01.nii.gz")
    assert label.dtype == np.uint8 and sorted(np.unique(label)) == [0, 1] and int(label.sum()) == 2 * 3 * 3
    with pytest.raises(ConfigError, match=r"02_manual.nii.gz: label value\(s\) 255 are not in the label map"):
        import_dataset(cases[1:], "Task503_V", labels={"vessel": 1}, label_map={0: 0, 254: 1},
                       raw_root=tmp_path / "raw", num_processes=1)  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == ["Task502_V"]  # nothing half-written
    assert parse_label_map(["0=0", "*=1"]) == {"0": 0, "*": 1}


def test_verification_failure_leaves_nothing(tmp_path: Path) -> None:
    src = _brats_like(tmp_path / "src")
    with pytest.raises(Exception, match=r"labelsTr/p1.nii.gz: label value\(s\) 2, 3, 4 not declared"):
        import_dataset(_cases(src), "Task504_B", labels={"one": 1}, raw_root=tmp_path / "raw")
    assert list((tmp_path / "raw").iterdir()) == []


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        (lambda r: (r / "train/p2/T1c_norm.nii.gz").unlink(), "case 'p2' has no file for channel T1c"),
        (lambda r: (r / "train/p2/seg.nii.gz").unlink(), "training case 'p2' has no labels file"),
        (lambda r: _write(r / "other/p2/seg.nii.gz", np.zeros(SHAPE, np.uint8)), "field {split} is 'train'"),
    ],
)
def test_ambiguous_or_incomplete_layouts_are_refused(tmp_path: Path, change, expect: str) -> None:
    src = _brats_like(tmp_path / "src")
    change(src)
    with pytest.raises(UsageError, match=expect):
        _cases(src)


def test_other_refusals(tmp_path: Path) -> None:
    src = _brats_like(tmp_path / "src")
    with pytest.raises(UsageError, match="matches no file"):
        match_cases(src, {"A": "{case}/none.nii.gz"})
    with pytest.raises(UsageError, match="no case has split=tst"):
        match_cases(src, BRATS_ARGS["channels"], BRATS_ARGS["labels"], test="split=tst")
    with pytest.raises(UsageError, match="no pattern has a {case} field"):
        match_cases(src, {"A": "train/p1/Flair_norm.nii.gz"})
    single = match_cases(src, {"A": "train/p1/Flair_norm.nii.gz"}, "train/p1/seg.nii.gz", case_id="ct")
    assert [(c[0], c[1]["A"].name) for c in single] == [("ct", "Flair_norm.nii.gz")]
    with pytest.raises(UsageError, match="not TaskNNN_Name"):
        import_dataset(_cases(src), "BraTS", regions=REGIONS, raw_root=tmp_path / "raw")
    with pytest.raises(UsageError, match="consecutive"):
        import_dataset(_cases(src), "Task505_B", labels={"a": 1, "b": 3}, raw_root=tmp_path / "raw")
    assert region_order({"whole": [1, 2, 3], "core": [2, 3], "enh": [3]}) == [1, 2, 3]


def test_cli_imports_and_reports_one_line_errors(tmp_path: Path, run_main, monkeypatch: pytest.MonkeyPatch) -> None:
    src = _brats_like(tmp_path / "src")
    monkeypatch.setenv("SEGFORGE_RAW", str(tmp_path / "raw"))
    base = ["import-dataset", str(src), "--name", "Task506_B", "--channel", "FLAIR={split}/{case}/Flair_norm.nii.gz",
            "--labels", "{split}/{case}/seg.nii.gz", "--test", "split=test", "-np", "1"]  # fmt: skip
    regions = ["--region", "whole=1,2,3,4", "--region", "core=1,3,4", "--region", "enhancing=4"]
    code, out, err = run_main([*base, *regions, "--regions-class-order", "2,1,4", "--link"])
    assert (code, err) == (0, "") and "imported 2 training and 1 test case(s)" in out
    code, out, err = run_main([*base[:3], "Task507_B", *base[4:], "--label-name", "one=1"])
    assert code == 1 and err.count("error:") == 1 and "label value(s) 2, 3, 4 not declared" in err, err
    code, out, err = run_main([*base, "--channel", "FLAIR=x"])
    assert code == 2 and "--channel 'FLAIR' is given twice" in err


def test_rgb_png_with_gif_masks_and_a_changed_file_ending(tmp_path: Path) -> None:
    """One RGB file per case (channels R,G,B), GIF masks 0/255 -> PNG 0/1; NRRD images re-written as NIfTI."""
    from PIL import Image

    rng = np.random.default_rng(1)
    for case in ("a", "b"):
        (tmp_path / "photos").mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (12, 10, 3), dtype=np.uint8)).save(tmp_path / "photos" / f"{case}.png")
        mask = np.zeros((12, 10), np.uint8)
        mask[3:7, 2:6] = 255
        Image.fromarray(mask).save(tmp_path / "photos" / f"{case}_mask.gif")
    matched = match_cases(tmp_path / "photos", {"R,G,B": "{case}.png"}, "{case}_mask.gif")
    cases = [CaseFiles(*m) for m in matched]
    import_dataset(cases, "Task508_Photos", labels={"cell": 1}, label_map=["0=0,255=1"], mode="link",
                   raw_root=tmp_path / "raw")  # fmt: skip
    out = tmp_path / "raw" / "Task508_Photos"
    dj = json.loads((out / "dataset.json").read_text())
    assert dj["channel_names"] == {"0": "R", "1": "G", "2": "B"} and dj["file_ending"] == ".png"
    assert (out / "imagesTr" / "a_0000.png").is_symlink()
    label = np.asarray(Image.open(out / "labelsTr" / "a.png"))
    assert sorted(np.unique(label)) == [0, 1] and int(label.sum()) == 16
    # another ending than the sources': every file is read and written again (geometry kept)
    nrrd = _write(tmp_path / "nrrd" / "c1_img.nrrd", np.arange(480, dtype=np.int16).reshape(SHAPE))
    _write(tmp_path / "nrrd" / "c1_seg.nrrd", (np.arange(480).reshape(SHAPE) % 2).astype(np.uint8))
    case = CaseFiles("c1", {"T1": nrrd}, tmp_path / "nrrd" / "c1_seg.nrrd")
    import_dataset([case], "Task509_N", labels={"one": 1}, file_ending=".nii.gz", raw_root=tmp_path / "raw")
    written = sitk.ReadImage(str(tmp_path / "raw" / "Task509_N" / "imagesTr" / "c1_0000.nii.gz"))
    assert written.GetSpacing() == (1.5, 1.0, 2.0)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(written), np.arange(480).reshape(SHAPE))


def test_rgb_tiff_converted_to_png_keeps_its_three_channels(tmp_path: Path) -> None:
    """DRIVE for nnU-Net's PNG reader: RGB TIFFs re-written as RGB PNG (8-bit, pixel for pixel)."""
    from PIL import Image

    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    (tmp_path / "src").mkdir()
    Image.fromarray(pixels).save(tmp_path / "src" / "a.tif")
    Image.fromarray(np.where(pixels[..., 0] > 128, 255, 0).astype(np.uint8)).save(tmp_path / "src" / "a_mask.gif")
    matched = match_cases(tmp_path / "src", {"R,G,B": "{case}.tif"}, "{case}_mask.gif")
    import_dataset([CaseFiles(*m) for m in matched], "Task510_Rgb", labels={"v": 1}, label_map=["0=0,255=1"],
                   file_ending=".png", raw_root=tmp_path / "raw")  # fmt: skip
    written = Image.open(tmp_path / "raw" / "Task510_Rgb" / "imagesTr" / "a_0000.png")
    assert written.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(written), pixels)
