"""``segforge demo``: the whole pipeline on the hippocampus data shipped with segforge.

Stage messages and progress go to stderr; the Dice table and the list of artifacts go to
stdout. Interrupting (Ctrl-C) saves the training state; running the same command again
continues where it stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from segforge.cli import render

if TYPE_CHECKING:  # pragma: no cover
    from segforge.demo.pipeline import DemoResult
    from segforge.evaluation.evaluate_folder import EvaluationSummary


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def dice_table(summary: EvaluationSummary, names: dict[int, str]) -> Any:
    """Dice per case (rows) and label (columns), the case's mean, and the means over cases."""
    labels = [int(lb) for lb in summary.labels]
    rows = []
    for case in summary.metric_per_case:
        values = [case.metrics[str(lb)].dice for lb in labels]
        defined = [v for v in values if v is not None]
        rows.append((case.case_id, *map(_fmt, values), _fmt(sum(defined) / len(defined) if defined else None)))
    means = [summary.mean[str(lb)]["dice"] for lb in labels]
    rows.append((render.cell("mean", "bold"), *(render.cell(_fmt(v), "bold") for v in means),
                 render.cell(_fmt(summary.foreground_mean["dice"]), "bold")))  # fmt: skip
    columns = ("case", *(f"{names.get(lb, f'label {lb}')} ({lb})" for lb in labels), "mean")
    return render.table(columns, rows, title=f"Dice on {len(summary.metric_per_case)} held-back test case(s)")


def artifacts_table(result: DemoResult) -> Any:
    root = result.paths.root
    rows = []
    for what, path in result.paths.artifacts():
        shown = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
        rows.append((what, shown + ("/" if path.is_dir() else "")))
    return render.table(("artifact", f"where (under {root})"), rows, title="artifacts")


def _label_names(result: DemoResult) -> dict[int, str]:
    from segforge.io.layouts import open_raw_dataset

    return {v: k for k, v in open_raw_dataset(result.paths.dataset).dataset_json.label_values().items() if v > 0}


def demo_command(
    minutes: Annotated[
        float, typer.Option("--minutes", help="Training time budget in minutes (segforge train --time-budget).")
    ] = 5.0,
    network: Annotated[str, typer.Option("--network", help="Network to train (registry name).")] = "generic_unet",
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Folder for everything the demo makes (its own raw/preprocessed/results)."),
    ] = Path("segforge_demo"),
    device: Annotated[str, typer.Option("--device", help="auto (CUDA when available), cpu or cuda.")] = "auto",
    num_processes: Annotated[int, typer.Option("-np", "--num-processes", help="Worker processes for data stages.")] = 2,
) -> None:
    """Run the whole pipeline on 48 hippocampus MRI cases shipped with segforge (MSD Task04 subset, CC BY-SA 4.0).

    Stages: convert-msd, verify, plan-and-preprocess, train fold 'all' for --minutes,
    predict the 8 held-back cases, evaluate them (summary.json, pictures, report.html).

    Re-running resumes: finished stages are skipped and an interrupted training continues.
    Your SEGFORGE_* folders are not used: everything goes under --out.
    """
    from segforge.demo.pipeline import DemoOptions, run_demo
    from segforge.training.signals import TrainingInterrupted

    options = DemoOptions(out=out, minutes=minutes, network=network, device=device, num_processes=num_processes)
    render.message(f"segforge demo in {out.expanduser().resolve()} (training budget {minutes:g} min)", style=None)
    try:
        result = run_demo(options, say=lambda text: render.message(text, style=None))
    except TrainingInterrupted as exc:
        raise TrainingInterrupted(
            exc.message,
            hint=f"run `segforge demo --out {out}` again to continue where it stopped",
            signum=exc.exit_code - 128,
        ) from None
    if result.summary is None:  # pragma: no cover - only with stop_after_epochs, which the CLI does not set
        render.message("training paused; run the demo again to continue", style="yellow")
        return
    render.show(dice_table(result.summary, _label_names(result)), artifacts_table(result))
    render.message(f"demo finished in {result.seconds:.0f} s; open {result.paths.report_html} in a browser", style=None)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
