"""report.html: the metrics table, the means, relative links that exist; and ``segforge evaluate --plots``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from segforge_eval_cases import write_cases

from segforge.evaluation.evaluate_folder import evaluate_folder
from segforge.evaluation.plots import write_plots
from segforge.evaluation.report import relative_link, render_report, write_report


@pytest.fixture
def evaluated(tmp_path):
    write_cases(tmp_path, shifts=(1, 4))
    return tmp_path, evaluate_folder(tmp_path / "ref", tmp_path / "pred", [1, 2])


def _links(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"#][^"]*)"', page)


def test_report_has_a_row_per_case_and_label_the_means_and_working_relative_links(evaluated):
    root, summary = evaluated
    plots = write_plots(summary, root / "eval", images_dir=root / "images", label_names={1: "Anterior", 2: "Posterior"})
    progress = root / "results" / "fold_all" / "progress.png"
    progress.parent.mkdir(parents=True)
    progress.write_bytes(b"png")
    path = write_report(summary, root / "eval" / "report.html", plots=plots, progress_png=progress,
                        label_names={1: "Anterior", 2: "Posterior"}, title="demo <report>")  # fmt: skip
    page = path.read_text()
    for case in summary.metric_per_case:
        for label, name in (("1", "Anterior"), ("2", "Posterior")):
            m = case.metrics[label]
            low = " class=low" if m.dice < 0.5 else ""
            row = f"<td class=id>{name}</td><td{low}>{m.dice:.4f}</td><td>{m.iou:.4f}</td>"
            assert row in page, (case.case_id, label)
            assert f"<td>{m.n_ref}</td><td>{m.n_pred}</td>" in page
    mean = summary.foreground_mean
    assert f"<td class=id>mean over labels</td><td>{mean['dice']:.4f}</td>" in page.replace(" class=low", "")
    assert f"{summary.mean['2']['dice']:.4f}" in page
    assert "<title>demo &lt;report&gt;</title>" in page  # escaped
    links = _links(page)
    assert "plots/case_0.png" in links and "plots/dice_boxplot.png" in links
    assert "../results/fold_all/progress.png" in links
    for link in links:
        assert not Path(link).is_absolute() and (path.parent / link).is_file(), link
    assert 'id="case_1"' in page and '<a href="#case_1">case_1</a>' in page


def test_report_without_plots_or_training_links_nothing_missing(evaluated):
    root, summary = evaluated
    path = write_report(summary, root / "report.html", progress_png=root / "missing" / "progress.png")
    page = path.read_text()
    assert _links(page) == [] and "<img" not in page and "progress.png" not in page
    assert page.count("<tr><td class=id>case_0</td>") == 2  # one row per label, no picture link


def test_case_ids_are_escaped_and_links_relative(tmp_path, evaluated):
    _, summary = evaluated
    summary.metric_per_case[0].case_id = 'x"><script>'
    page = render_report(summary, tmp_path)
    assert "<script>" not in page and "x&quot;&gt;&lt;script&gt;" in page
    assert relative_link(tmp_path / "a" / "b.png", tmp_path / "c") == "../a/b.png"


def test_evaluate_plots_writes_pictures_and_report_next_to_summary(evaluated, capsys):
    from segforge.cli.app import main

    root, summary = evaluated
    out = root / "evaluation" / "summary.json"
    with pytest.raises(SystemExit) as stopped:
        main(["evaluate", "--ref", str(root / "ref"), "--pred", str(root / "pred"), "--labels", "1", "2",
              "-o", str(out), "--plots", "--images", str(root / "images"), "-np", "1"])  # fmt: skip
    assert stopped.value.code in (0, None), capsys.readouterr().err
    _, err = capsys.readouterr()
    for name in ("summary.json", "report.html", "plots/case_0.png", "plots/case_1.png", "plots/dice_boxplot.png"):
        assert (root / "evaluation" / name).is_file(), name
    assert "wrote 2 picture(s)" in err
    page = (root / "evaluation" / "report.html").read_text()
    assert f"{summary.metric_per_case[0].metrics['1'].dice:.4f}" in page


def test_evaluate_images_needs_plots(evaluated, capsys):
    from segforge.cli.app import main

    root, _ = evaluated
    with pytest.raises(SystemExit) as stopped:
        main(["evaluate", "--ref", str(root / "ref"), "--pred", str(root / "pred"), "--labels", "1",
              "--images", str(root / "images")])  # fmt: skip
    assert stopped.value.code == 2
    assert "only used with --plots" in capsys.readouterr().err
    assert not (root / "pred" / "summary.json").exists()
