"""``report.html``: one self-contained page with an evaluation's numbers and pictures.

summary.json is for programs; a person wants to open one file and see the means, the cases
that went wrong and what they look like. The page has no scripts and no external resources
(its CSS is inline); pictures are linked by *relative* paths, so the folder can be moved,
zipped or served as a whole. Every text that comes from data is HTML-escaped.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from segforge._version import __version__
from segforge.atomic import atomic_write_text

if TYPE_CHECKING:  # pragma: no cover
    from segforge.evaluation.evaluate_folder import EvaluationSummary
    from segforge.evaluation.plots import PlotFiles

REPORT_NAME = "report.html"
#: (summary field, column title, digits)
METRIC_COLUMNS = (("dice", "Dice", 4), ("iou", "IoU", 4), ("precision", "precision", 4), ("recall", "recall", 4),
                  ("hd95", "HD95 mm", 2), ("assd", "ASSD mm", 2))  # fmt: skip
LOW_DICE = 0.5  # cells below this are highlighted: the cases to look at first

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1250px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #eee; text-align: right; }
th { background: #f4f4f4; } td.id, th.id { text-align: left; }
tr.mean td { font-weight: bold; background: #fafafa; }
td.low { background: #ffe3e0; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #555; }
.meta { color: #666; font-size: 0.85em; }
"""


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def relative_link(target: Path, start: Path) -> str:
    """``target`` relative to the folder ``start`` as a URL path (absolute file URI on another drive)."""
    try:
        rel = os.path.relpath(Path(target).resolve(), Path(start).resolve())
    except ValueError:  # Windows: different drives
        return Path(target).resolve().as_uri()
    return Path(rel).as_posix()


def _label_name(label: int | str, names: Mapping[int, str]) -> str:
    return names.get(int(label), f"label {label}")


def _metric_cells(metrics: Mapping[str, float | None]) -> str:
    cells = []
    for key, _, digits in METRIC_COLUMNS:
        value = metrics.get(key)
        low = key == "dice" and value is not None and value < LOW_DICE
        cells.append(f"<td{' class=low' if low else ''}>{_fmt(value, digits)}</td>")
    return "".join(cells)


def means_table(summary: EvaluationSummary, names: Mapping[int, str]) -> str:
    """Mean over cases per label, and the mean over labels."""
    head = "".join(f"<th>{_esc(title)}</th>" for _, title, _ in METRIC_COLUMNS)
    rows = [
        f"<tr><td class=id>{_esc(_label_name(label, names))} ({_esc(label)})</td>{_metric_cells(metrics)}</tr>"
        for label, metrics in summary.mean.items()
    ]
    rows.append(f"<tr class=mean><td class=id>mean over labels</td>{_metric_cells(summary.foreground_mean)}</tr>")
    return f"<table><tr><th class=id>label</th>{head}</tr>{''.join(rows)}</table>"


def cases_table(summary: EvaluationSummary, names: Mapping[int, str], links: Mapping[str, str]) -> str:
    """One row per case and label (case id linked to its picture when there is one)."""
    head = "".join(f"<th>{_esc(title)}</th>" for _, title, _ in METRIC_COLUMNS)
    rows = []
    for case in summary.metric_per_case:
        cid = _esc(case.case_id)
        shown = f'<a href="#{cid}">{cid}</a>' if case.case_id in links else cid
        for label, result in case.metrics.items():
            metrics = result.model_dump()
            rows.append(f"<tr><td class=id>{shown}</td><td class=id>{_esc(_label_name(label, names))}</td>"
                        f"{_metric_cells(metrics)}<td>{result.n_ref}</td><td>{result.n_pred}</td></tr>")  # fmt: skip
    return (f"<table><tr><th class=id>case</th><th class=id>label</th>{head}<th>voxels ref</th>"
            f"<th>voxels pred</th></tr>{''.join(rows)}</table>")  # fmt: skip


def _figure(src: str, caption: str, anchor: str | None = None) -> str:
    ident = f' id="{_esc(anchor)}"' if anchor else ""
    return (f'<figure{ident}><a href="{_esc(src)}"><img src="{_esc(src)}" alt="{_esc(caption)}"></a>'
            f"<figcaption>{_esc(caption)}</figcaption></figure>")  # fmt: skip


def render_report(summary: EvaluationSummary, folder: Path, *, plots: PlotFiles | None = None,
                  progress_png: Path | None = None, label_names: Mapping[int, str] | None = None,
                  title: str = "segforge evaluation", notes: Sequence[str] = ()) -> str:  # fmt: skip
    """The page's HTML; links are made relative to ``folder`` (where the page will be written)."""
    names = dict(label_names or {})
    links = {cid: relative_link(p, folder) for cid, p in (plots.cases.items() if plots else [])}
    parts = [f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{_esc(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{_esc(title)}</h1>"]  # fmt: skip
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    where = f"reference {_esc(summary.reference_folder)}; prediction {_esc(summary.prediction_folder)}"
    count = len(summary.metric_per_case)
    parts.append(f"<p class=meta>{count} case(s); {where}; segforge {_esc(__version__)}, {stamp}</p>")
    parts += [f"<p>{_esc(note)}</p>" for note in notes]
    parts.append("<h2>Mean over cases</h2>" + means_table(summary, names))
    if plots is not None and plots.dice_boxplot is not None:
        parts.append(_figure(relative_link(plots.dice_boxplot, folder), "Dice per label over the cases"))
    if progress_png is not None:
        src = relative_link(progress_png, folder)
        parts.append(f'<h2>Training</h2><p><a href="{_esc(src)}">progress.png</a> (loss, pseudo Dice, learning rate '
                     f"per epoch)</p>{_figure(src, 'training progress')}")  # fmt: skip
    parts.append(f"<h2>Per case</h2><p class=meta>{_esc(summary.conventions)}</p>" + cases_table(summary, names, links))
    if links:
        parts.append("<h2>Pictures</h2><p class=meta>reference: contour; prediction: semi-transparent fill; "
                     "slices through the centre of the foreground</p>")  # fmt: skip
        parts += [_figure(src, cid, anchor=cid) for cid, src in links.items()]
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(summary: EvaluationSummary, path: str | os.PathLike[str], *, plots: PlotFiles | None = None,
                 progress_png: str | os.PathLike[str] | None = None, label_names: Mapping[int, str] | None = None,
                 title: str = "segforge evaluation", notes: Sequence[str] = ()) -> Path:  # fmt: skip
    """Write ``report.html`` atomically (``progress_png`` is linked only when the file exists)."""
    path = Path(path)
    progress = Path(progress_png) if progress_png is not None and Path(progress_png).is_file() else None
    text = render_report(summary, path.parent, plots=plots, progress_png=progress, label_names=label_names,
                         title=title, notes=notes)  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    return path


def write_visual_report(summary: EvaluationSummary, folder: str | os.PathLike[str], *,
                        images_dir: str | os.PathLike[str] | None = None, label_names: Mapping[int, str] | None = None,
                        progress_png: str | os.PathLike[str] | None = None, image_io: object = None,
                        title: str = "segforge evaluation") -> tuple[PlotFiles, Path]:  # fmt: skip
    """``folder/plots/*.png`` and ``folder/report.html`` (what ``segforge evaluate --plots`` writes)."""
    from segforge.evaluation.plots import write_plots

    plots = write_plots(summary, folder, images_dir=images_dir, label_names=label_names, image_io=image_io)
    report = write_report(summary, Path(folder) / REPORT_NAME, plots=plots, progress_png=progress_png,
                          label_names=label_names, title=title)  # fmt: skip
    return plots, report
