"""``segforge dicom ...``: list a folder's series, convert one to NIfTI, write DICOM-SEG, predict with DICOM-SEG.

``segforge predict -i IN`` already reads series folders once this plugin is installed (the
``dicom`` image IO claims them) and writes ``OUT/<case>.nii.gz``. DICOM-SEG needs the source
slices and the model's label names, which the core command knows nothing about, so it is a
separate step (``to-seg``), and ``dicom predict`` runs the core prediction and then that step
for every case, with the choice of series (``--series``) for folders holding several.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

app = typer.Typer(help="DICOM series folders: list, convert to NIfTI, write DICOM-SEG, predict.", no_args_is_help=True)

SeriesOption = Annotated[
    Optional[str], typer.Option("--series", help="SeriesInstanceUID or SeriesDescription when a folder holds several.")
]
ModelOption = Annotated[Optional[Path], typer.Option("-m", "--model-dir", help="Run or fold folder of the model.")]
FoldsOption = Annotated[Optional[list[str]], typer.Option("--folds", "-f", help="Folds (default: every trained fold).")]
CheckpointOption = Annotated[str, typer.Option("--checkpoint", "-chk", help="best, final or latest.")]


def model_labels(model_dir: Path, folds: list[str] | None = None, checkpoint: str = "final") -> dict[str, int]:
    """The label names and values a trained model writes (dataset.json's labels; ignore label left out)."""
    from segforge.config.label_scheme import LabelScheme
    from segforge.inference.model_loading import checkpoint_name, fold_folders, load_model

    fold = fold_folders(model_dir, folds)[0]
    plans = load_model(fold / checkpoint_name(checkpoint)).plans
    written = set(LabelScheme.from_plans(plans).foreground_values()) | {0}
    return {name: int(value) for name, value in plans.labels.items() if isinstance(value, int) and value in written}


def dataset_json_labels(path: Path) -> dict[str, int]:
    """Label names and values of a dataset.json (``--labels``); region lists need the model (``-m``)."""
    import json

    from segforge.errors import ConfigError

    try:
        labels = json.loads(Path(path).read_text())["labels"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: cannot read its 'labels' ({type(exc).__name__})",
                          hint="pass the dataset.json the model was trained on") from None  # fmt: skip
    if any(not isinstance(v, (int, str)) or not str(v).isdigit() for v in labels.values()):
        raise ConfigError(
            f"{path}: labels hold regions (lists), not one value per name",
            hint="pass the model with -m: its plans say which value each region is written as",
        )
    return {str(k): int(v) for k, v in labels.items()}


def _labels_from(model_dir: Path | None, labels_json: Path | None, folds: list[str] | None, checkpoint: str) -> Any:
    from segforge.errors import UsageError

    if (model_dir is None) == (labels_json is None):
        raise UsageError("pass the model (-m MODEL_DIR) or its dataset.json (--labels FILE), one of the two",
                         hint="segment names come from the model's dataset.json labels")  # fmt: skip
    if labels_json is not None:
        return dataset_json_labels(labels_json)
    return model_labels(model_dir, folds, checkpoint)


@app.command("series")
def series_command(folder: Annotated[Path, typer.Argument(help="Folder holding slice files.")]) -> None:
    """List the image series in a folder and whether each is a readable grid."""
    from segforge.cli import render
    from segforge.errors import SegforgeError
    from segforge_dicom.series import ordered_grid, scan_folder

    rows = []
    for s in scan_folder(folder):
        try:
            grid = ordered_grid(s)
            size, spacing, status = " x ".join(map(str, grid.size)), " x ".join(f"{v:g}" for v in grid.spacing), "ok"
        except SegforgeError as exc:
            size, spacing, status = "-", "-", exc.message.split(": ")[-1]
        rows.append((s.uid or "(none)", s.description, s.modality, str(len(s.slices)), size, spacing, status))
    if not rows:
        raise SegforgeError(f"{folder}: no DICOM image series found", hint="pass the folder holding the slice files")
    render.show(render.table(("SeriesInstanceUID", "description", "modality", "slices", "size (x y z)",
                              "spacing mm", "status"), rows))  # fmt: skip


@app.command("to-nifti")
def to_nifti_command(
    series_folder: Annotated[Path, typer.Argument(help="Folder holding the series' slices.")],
    output: Annotated[Path, typer.Argument(help="NIfTI file to write (e.g. CASE_0000.nii.gz).")],
    series: SeriesOption = None,
) -> None:
    """Convert a series to NIfTI (same array and grid as predict reads), e.g. to train on it."""
    import SimpleITK as sitk

    from segforge.atomic import atomic_path
    from segforge.cli import render
    from segforge_dicom.image_io import read_series_image

    image = read_series_image(series_folder, series)
    output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(output, suffix=".nii.gz") as tmp:
        sitk.WriteImage(image, str(tmp), True)
    render.message(f"{series_folder} -> {output} ({' x '.join(map(str, image.GetSize()))})")


def convert_folder(predictions: Path, series_root: Path, out: Path, labels: dict[str, int], series: str | None,
                   case_ids: list[str] | None = None) -> list:  # fmt: skip
    """``predictions/<case>.nii.gz`` + ``series_root/<case>/`` -> ``out/<case>.dcm`` for ``case_ids`` (default: all)."""
    from segforge.errors import UsageError
    from segforge_dicom.seg_export import write_dicom_seg

    if case_ids is None:
        cases = sorted(p for p in predictions.glob("*.nii.gz") if not p.name.startswith("."))
    else:
        cases = [predictions / f"{c}.nii.gz" for c in case_ids if (predictions / f"{c}.nii.gz").is_file()]
    if not cases:
        raise UsageError(f"no CASE.nii.gz predictions in {predictions}", hint="run segforge predict first")
    missing = [p.name for p in cases if not (series_root / p.name.removesuffix(".nii.gz")).is_dir()]
    if missing:
        raise UsageError(f"no series folder {series_root}/{missing[0].removesuffix('.nii.gz')} for {missing[0]}",
                         hint="pass the folder holding one series sub-folder per case (the predict input)")  # fmt: skip
    written = []
    for pred in cases:
        case = pred.name.removesuffix(".nii.gz")
        written.append(write_dicom_seg(pred, series_root / case, out / f"{case}.dcm", labels, series=series))
    return written


@app.command("to-seg")
def to_seg_command(
    prediction: Annotated[Path, typer.Argument(help="CASE.nii.gz on the series' grid, or a folder of them.")],
    series_folder: Annotated[Path, typer.Argument(help="The series folder (or the folder of case sub-folders).")],
    output: Annotated[Path, typer.Argument(help="DICOM-SEG file to write (or a folder for CASE.dcm files).")],
    model_dir: ModelOption = None,
    labels_json: Annotated[Optional[Path], typer.Option("--labels", help="dataset.json naming the labels.")] = None,
    folds: FoldsOption = None,
    checkpoint: CheckpointOption = "final",
    series: SeriesOption = None,
) -> None:
    """Write a prediction as DICOM-SEG referencing the source series (segment names from the model's labels)."""
    from segforge.cli import render
    from segforge.errors import UsageError
    from segforge_dicom.seg_export import write_dicom_seg

    labels = _labels_from(model_dir, labels_json, folds, checkpoint)
    if prediction.is_dir():
        written = convert_folder(prediction, series_folder, output, labels, series)
    elif prediction.is_file():
        written = [write_dicom_seg(prediction, series_folder, output, labels, series=series)]
    else:
        raise UsageError(f"prediction {prediction} does not exist", hint="pass CASE.nii.gz or predict's output")
    for path in written:
        render.message(f"wrote {path}")


@app.command("predict")
def predict_command(
    input_folder: Annotated[Path, typer.Option("-i", "--input", help="Folder with one series sub-folder per case.")],
    output_folder: Annotated[Path, typer.Option("-o", "--output", help="Folder for CASE.nii.gz (and CASE.dcm).")],
    model_dir: ModelOption = None,
    task: Annotated[Optional[str], typer.Option("--task", "-t", "-d", help="Task number or name.")] = None,
    config: Annotated[str, typer.Option("--config", "-c", help="Configuration.")] = "3d_fullres",
    folds: FoldsOption = None,
    checkpoint: CheckpointOption = "final",
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    no_tta: Annotated[bool, typer.Option("--no-tta", "--disable-tta", help="No test-time mirroring.")] = False,
    series: SeriesOption = None,
    dicom_seg: Annotated[bool, typer.Option("--dicom-seg/--nifti-only", help="Also write OUT/CASE.dcm.")] = True,
) -> None:
    """segforge predict over series folders, then a DICOM-SEG beside each CASE.nii.gz (other options: core predict)."""
    from types import SimpleNamespace

    from segforge.cli import predict_cmd
    from segforge.plugins import get_registries
    from segforge_dicom.image_io import DicomParams

    registries = get_registries()
    reader = registries.image_io.get("dicom")
    previous, reader.params = reader.params, DicomParams(series=series)  # the component predict's listing asks
    try:
        run_dir = predict_cmd.find_model_dir(task, model_dir, config, None, None, None, registries)
        labels = model_labels(run_dir, folds, checkpoint) if dicom_seg else {}
        predict_cmd.predict_command(SimpleNamespace(args=[]), input_folder, output_folder, model_dir=run_dir,
                                    config=config, folds=folds, checkpoint=checkpoint, device=device,
                                    no_tta=no_tta)  # fmt: skip
    finally:
        reader.params = previous
    if dicom_seg:
        from segforge.cli import render

        cases = sorted(p.name for p in input_folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        written = convert_folder(output_folder, input_folder, output_folder, labels, series, cases)
        render.message(f"{len(written)} DICOM-SEG file(s) -> {output_folder}")
