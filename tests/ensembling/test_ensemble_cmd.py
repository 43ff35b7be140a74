"""``segforge ensemble`` through the CLI, and the multi-value option parsing it relies on."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from segforge_ensemble_cases import GEOMETRY, write_probs

from segforge.cli.app import main
from segforge.cli.multi_value import expand_multi_values
from segforge.inference.export import read_probabilities


def run(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    out, err = capsys.readouterr()
    return code, out, err


def test_expand_multi_values_repeats_listed_options_only():
    args = ["-i", "a", "b", "c", "-o", "out", "x", "--save-probabilities", "--folds", "0", "1", "--", "-i", "z"]
    assert expand_multi_values(args, ("-i", "--folds")) == [
        "-i", "a", "-i", "b", "-i", "c", "-o", "out", "x", "--save-probabilities",
        "--folds", "0", "--folds", "1", "--", "-i", "z",
    ]  # fmt: skip
    assert expand_multi_values(["--step", "-0.5", "-i", "-1"], ("-i",)) == ["--step", "-0.5", "-i", "-1"]


def test_ensemble_command_three_folders(tmp_path, capsys):
    rng = np.random.default_rng(0)
    folders = []
    total = np.zeros((3, *GEOMETRY.shape), np.float32)
    for i in range(3):
        probs = rng.dirichlet([1.0, 1.0, 1.0], size=GEOMETRY.shape).transpose(3, 0, 1, 2).astype(np.float32)
        write_probs(tmp_path / f"m{i}", "c1", probs, configuration="2d" if i == 0 else "3d_fullres")
        total += probs.astype(np.float16).astype(np.float32)
        folders.append(str(tmp_path / f"m{i}"))
    code, _, err = run(capsys, "ensemble", "-i", *folders, "-o", str(tmp_path / "out"), "--save-probabilities",
                       "-np", "1")  # fmt: skip
    assert code == 0, err
    assert "1 case(s) ensembled from 3 folders, 0 skipped" in err
    seg = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out" / "c1.nii.gz")))
    agree = np.mean(seg == np.argmax(total, axis=0))
    assert agree >= 0.98  # float16 rounding of the saved mean may flip near-ties only
    _, info = read_probabilities(tmp_path / "out" / "c1.npz")
    assert info.configuration == "2d+3d_fullres" and info.plans_name == "segforgePlans"
    code, _, err = run(capsys, "ensemble", "-i", *folders, "-o", str(tmp_path / "out"), "--continue")
    assert code == 0 and "0 case(s) ensembled from 3 folders, 1 skipped" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-i", "{a}", "-o", "{out}"], "ensembling needs at least 2 input folders, got 1"),
        (["-i", "{a}", "{missing}", "-o", "{out}"], "input folder {missing} does not exist"),
        (["-i", "{a}", "{a}", "-o", "{out}", "--file-ending", ".webp"], "--file-ending .webp is not one of"),
    ],
)
def test_ensemble_command_usage_errors(tmp_path, capsys, args, message):
    write_probs(tmp_path / "a", "c1", np.full((3, *GEOMETRY.shape), 1 / 3, np.float32))
    names = {"a": tmp_path / "a", "out": tmp_path / "out", "missing": tmp_path / "missing"}
    code, _, err = run(capsys, "ensemble", *[a.format(**names) for a in args])
    assert code == 2
    assert f"error: {message.format(**names)}" in err and "hint:" in err
