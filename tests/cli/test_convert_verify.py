"""``segforge convert-msd`` and ``segforge verify`` through the real entry point: output and exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from segforge.cli.app import main
from segforge.testing.synthetic import make_task


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def raw(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SEGFORGE_RAW", str(tmp_path / "raw"))
    return tmp_path / "raw"


@pytest.fixture
def converted(tmp_path: Path, raw: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    src = make_task(tmp_path / "msd" / "Task05_Prostate", n_cases=2, layout="msd", channels=["T2", "ADC"])
    code, out, err = _run(["convert-msd", str(src), "-np", "1"], capsys)
    assert code == 0, err
    assert out == f"converted 2 case(s), skipped 0 already complete, into {raw / 'Task005_Prostate'}\n"
    return raw / "Task005_Prostate"


def test_convert_then_verify_ok(converted: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert sorted(p.name for p in (converted / "imagesTr").iterdir())[:2] == [
        "case_000_0000.nii.gz",
        "case_000_0001.nii.gz",
    ]
    code, out, err = _run(["verify", "--task", "5", "-np", "1"], capsys)
    assert (code, err) == (0, "")
    assert out == "dataset OK: 2 cases, 2 channel(s), labels 0=background, 1=inner, 2=core\n"


def test_convert_rerun_reports_skips(converted: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = converted.parent.parent / "msd" / "Task05_Prostate"
    code, out, _ = _run(["convert-msd", str(src), "--task-id", "5"], capsys)
    assert code == 0 and out.startswith("converted 0 case(s), skipped 2 already complete")


def test_verify_warnings_only_exit_0(converted: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (converted / "labelsTr" / "stray.nii.gz").write_bytes(b"x")
    code, out, err = _run(["verify", "-t", "Task005_Prostate", "-np", "1"], capsys)
    assert code == 0 and out.startswith("dataset OK: 2 cases")
    assert "warning" in err and "labelsTr/stray.nii.gz" in err


def test_verify_errors_exit_1_with_one_line_error(converted: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (converted / "labelsTr" / "case_001.nii.gz").unlink()
    (converted / "imagesTr" / "case_000_0001.nii.gz").unlink()
    code, out, err = _run(["verify", "--task", "005", "-np", "1"], capsys)
    assert code == 1 and out == ""
    error_lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert error_lines == [
        "error: 2 problems in Task005_Prostate: first: imagesTr/case_000_0001.nii.gz: missing channel 1 of case "
        "'case_000'"
    ]
    assert "hint: add the channel file" in err and "labelsTr/case_001.nii.gz" in err  # the table lists both
    assert "Traceback" not in err


def test_verify_bad_dataset_json_and_unknown_task(converted: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (converted / "dataset.json").write_text("{")
    code, _, err = _run(["verify", "--task", "5", "-np", "1"], capsys)
    assert code == 1 and "error: 1 problem in Task005_Prostate: first: dataset.json: not valid JSON" in err
    code, _, err = _run(["verify", "--task", "9"], capsys)
    assert code == 2 and "error: no task 9 in" in err and "Task005_Prostate" in err and "hint:" in err


def test_convert_usage_errors(tmp_path: Path, raw: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["convert-msd", str(tmp_path / "nothing")], capsys)
    assert code == 2 and "error: MSD folder" in err and "does not exist" in err
    code, _, err = _run(["convert-msd", str(tmp_path), "-np", "0"], capsys)
    assert code == 2 and "-np must be at least 1" in err
