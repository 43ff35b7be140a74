"""``segforge convert-msd`` and ``segforge verify`` through the real entry point: output and exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from segforge.testing.synthetic import make_task


@pytest.fixture
def raw(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SEGFORGE_RAW", str(tmp_path / "raw"))
    return tmp_path / "raw"


@pytest.fixture
def converted(tmp_path: Path, raw: Path, run_main) -> Path:
    src = make_task(tmp_path / "msd" / "Task05_Prostate", n_cases=2, layout="msd", channels=["T2", "ADC"])
    code, out, err = run_main(["convert-msd", str(src), "-np", "1"])
    assert code == 0, err
    assert out == f"converted 2 case(s), skipped 0 already complete, into {raw / 'Task005_Prostate'}\n"
    return raw / "Task005_Prostate"


def test_convert_then_verify_ok(converted: Path, run_main) -> None:
    assert sorted(p.name for p in (converted / "imagesTr").iterdir())[:2] == [
        "case_000_0000.nii.gz",
        "case_000_0001.nii.gz",
    ]
    code, out, err = run_main(["verify", "--task", "5", "-np", "1"])
    assert (code, err) == (0, "")
    assert out == "dataset OK: 2 cases, 2 channel(s), labels 0=background, 1=inner, 2=core\n"


def test_convert_rerun_reports_skips(converted: Path, run_main) -> None:
    src = converted.parent.parent / "msd" / "Task05_Prostate"
    code, out, _ = run_main(["convert-msd", str(src), "--task-id", "5"])
    assert code == 0 and out.startswith("converted 0 case(s), skipped 2 already complete")


def test_verify_warnings_only_exit_0(converted: Path, run_main) -> None:
    (converted / "labelsTr" / "stray.nii.gz").write_bytes(b"x")
    code, out, err = run_main(["verify", "-t", "Task005_Prostate", "-np", "1"])
    assert code == 0 and out.startswith("dataset OK: 2 cases")
    assert "warning" in err and "labelsTr/stray.nii.gz" in err


def test_verify_errors_exit_1_with_one_line_error(converted: Path, run_main) -> None:
    (converted / "labelsTr" / "case_001.nii.gz").unlink()
    (converted / "imagesTr" / "case_000_0001.nii.gz").unlink()
    code, out, err = run_main(["verify", "--task", "005", "-np", "1"])
    assert code == 1 and out == ""
    error_lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert error_lines == [
        "error: 2 problems in Task005_Prostate: first: imagesTr/case_000_0001.nii.gz: missing channel 1 of case "
        "'case_000'"
    ]
    assert "hint: add the channel file" in err and "labelsTr/case_001.nii.gz" in err  # the table lists both
    assert "Traceback" not in err


def test_verify_bad_dataset_json_and_unknown_task(converted: Path, run_main) -> None:
    (converted / "dataset.json").write_text("{")
    code, _, err = run_main(["verify", "--task", "5", "-np", "1"])
    assert code == 1 and "error: 1 problem in Task005_Prostate: first: dataset.json: not valid JSON" in err
    code, _, err = run_main(["verify", "--task", "9"])
    assert code == 2 and "error: no task 9 in" in err and "Task005_Prostate" in err and "hint:" in err


def test_convert_usage_errors(tmp_path: Path, raw: Path, run_main) -> None:
    code, _, err = run_main(["convert-msd", str(tmp_path / "nothing")])
    assert code == 2 and "error: MSD folder" in err and "does not exist" in err
    code, _, err = run_main(["convert-msd", str(tmp_path), "-np", "0"])
    assert code == 2 and "-np must be at least 1" in err
