"""``segforge evaluate --ref REF --pred PRED --labels 1 2``: metrics per case and label (nnUNet_evaluate_folder).

Writes ``summary.json`` (into PRED unless ``--output`` says otherwise) and prints the mean per
label as a table on stdout, or the whole summary as JSON with ``--json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from segforge.cli import render

if TYPE_CHECKING:  # pragma: no cover
    from segforge.evaluation.evaluate_folder import EvaluationSummary


def parse_labels(values: list[str] | None, extra: list[str]) -> list[int]:
    """``--labels 1 2`` / ``-l 1 -l 2`` / ``--labels 1,2`` as integers."""
    from segforge.errors import UsageError

    if extra and values is None:
        raise UsageError(f"unexpected argument '{extra[0]}'", hint="label values follow --labels")
    items = [v.strip() for v in [*(values or []), *extra] for v in v.split(",") if v.strip()]
    if not items:
        raise UsageError("no labels given", hint="pass the labels to evaluate, e.g. --labels 1 2")
    bad = [v for v in items if not v.lstrip("-").isdigit()]
    if bad:
        raise UsageError(f"invalid label '{bad[0]}'", hint="labels are integers, e.g. --labels 1 2")
    return [int(v) for v in items]


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def summary_table(summary: EvaluationSummary) -> Any:
    rows = []
    for label, m in summary.mean.items():
        rows.append((label, _fmt(m["dice"]), _fmt(m["iou"]), _fmt(m["precision"]), _fmt(m["recall"]),
                     _fmt(m["hd95"], 2), _fmt(m["assd"], 2)))  # fmt: skip
    f = summary.foreground_mean
    rows.append(("mean", _fmt(f["dice"]), _fmt(f["iou"]), _fmt(f["precision"]), _fmt(f["recall"]),
                 _fmt(f["hd95"], 2), _fmt(f["assd"], 2)))  # fmt: skip
    title = f"{len(summary.metric_per_case)} case(s), mean over cases per label"
    return render.table(("label", "Dice", "IoU", "precision", "recall", "HD95 mm", "ASSD mm"), rows, title=title)


def evaluate_command(
    ctx: typer.Context,
    ref: Annotated[Path, typer.Option("--ref", "-ref", help="Folder with the reference segmentations.")],
    pred: Annotated[Path, typer.Option("--pred", "-pred", help="Folder with the predictions (same file names).")],
    labels: Annotated[
        Optional[list[str]], typer.Option("--labels", "-l", help="Labels to evaluate (--labels 1 2).")
    ] = None,
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Where to write summary.json (default: PRED/summary.json).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole summary as JSON on stdout.")] = False,
    num_processes: Annotated[int, typer.Option("-np", "--num-processes", help="Cases evaluated in parallel.")] = 2,
    plots: Annotated[
        bool, typer.Option("--plots", help="Also write plots/ (a PNG per case, Dice box plot) and report.html.")
    ] = False,
    images: Annotated[
        Optional[Path], typer.Option("--images", help="With --plots: CASE_0000 images drawn behind the contours.")
    ] = None,
    dataset_json: Annotated[
        Optional[Path],
        typer.Option(
            "--dataset-json",
            help="Score regions and leave out the ignore label as this dataset.json declares; "
            "--labels then defaults to its foreground labels (regions: their regions_class_order).",
        ),
    ] = None,
) -> None:
    """Dice, IoU, precision, recall, HD95 and ASSD (mm) per case and label, and their means."""
    from segforge.errors import UsageError
    from segforge.evaluation.evaluate_folder import evaluate_folder, reader_for_folder
    from segforge.plugins import get_registries

    if num_processes < 1:
        raise UsageError(f"-np must be at least 1, got {num_processes}", hint="pass -np 1 to evaluate in one process")
    scheme = None
    if dataset_json is not None:
        from segforge.config.dataset import load_dataset_json
        from segforge.config.label_scheme import LabelScheme

        scheme = LabelScheme.from_dataset_json(load_dataset_json(dataset_json))
    if scheme is not None and labels is None and not ctx.args:
        values = list(scheme.evaluation_classes())
    else:
        values = parse_labels(labels, list(ctx.args))
    if images is not None and not (plots and images.is_dir()):
        raise UsageError(f"--images {images}: {'not a folder' if plots else 'only used with --plots'}",
                         hint="pass --plots and a folder holding CASE_0000 image files")  # fmt: skip
    image_io = reader_for_folder(ref, get_registries())  # PNG references are read by the natural-image IO
    out = output or pred / "summary.json"
    summary = evaluate_folder(ref, pred, values, num_processes=num_processes, output_file=out, image_io=image_io,
                              show_progress=not as_json,
                              regions=scheme.evaluation_classes() if scheme and scheme.has_regions else None,
                              ignore_label=scheme.ignore_label if scheme else None)  # fmt: skip
    if as_json:
        render.print_json(summary.model_dump(mode="json"))
    else:
        render.show(summary_table(summary))
        render.message(f"wrote {out}")
    if plots:
        from segforge.evaluation.report import write_visual_report

        files, report = write_visual_report(summary, out.parent, images_dir=images, image_io=image_io)
        render.message(f"wrote {len(files.cases)} picture(s) in {files.folder} and {report}")


EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": False}


def register(app: typer.Typer) -> None:
    app.command("evaluate", context_settings=EXTRA_ARGS)(evaluate_command)
