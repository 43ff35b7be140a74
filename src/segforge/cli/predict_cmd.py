"""``segforge predict``: segment a folder of raw images with a trained model (nnUNet_predict).

The model is found from ``--task/--config/--trainer/--network/--plans`` in the results folder,
or given directly with ``-m`` (a ``<trainer>__<network>__<plans>`` folder or one fold folder).
nnU-Net's spellings work where they are cheap: ``-f``, ``-tr``, ``-c``, ``-chk model_best``,
``--disable-tta``, ``--step_size``, ``--save_probabilities``. Progress goes to stderr, the
summary table to stdout.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from segforge.cli import render
from segforge.cli.run_options import NetworkOption, PlansOption, TrainerOption
from segforge.hardware import resolve_device
from segforge.inference.folder_jobs import default_overlap, jobs_for_folder
from segforge.packaging.model_source import find_model_dir

if TYPE_CHECKING:  # pragma: no cover
    from segforge.inference.predictor import CaseResult

FOLDS_HELP = "Folds to ensemble (repeat, or list them: --folds 0 1 2; 'all' = fold_all). Default: every trained fold."


def parse_folds(values: list[str] | None, extra: list[str]) -> list[str] | None:
    """``--folds 0 1 2`` / ``-f 0 -f 1`` / ``--folds 0,1`` as fold names; ``all`` stays ``all``."""
    from segforge.errors import UsageError

    if extra and values is None:
        raise UsageError(f"unexpected argument '{extra[0]}'", hint="fold numbers follow --folds")
    if values is None:
        return None
    folds = [f.strip() for v in [*values, *extra] for f in v.split(",") if f.strip()]
    for fold in folds:
        if fold != "all" and not fold.isdigit():
            raise UsageError(f"invalid fold '{fold}'", hint="folds are numbers (0 1 2 3 4) or 'all'")
    return folds


def summary_table(results: list[CaseResult], skipped: list[Any]) -> Any:
    rows = []
    for r in results:
        s = r.seconds
        rows.append((r.case_id, " x ".join(map(str, r.shape)), f"{s.get('preprocess', 0):.1f}",
                     f"{s.get('predict', 0):.1f}", f"{s.get('export', 0):.1f}", r.output.name))  # fmt: skip
    rows += [(j.case_id, "-", "-", "-", "-", f"{j.output.name} (exists, skipped)") for j in skipped]
    return render.table(("case", "shape (preprocessed)", "preprocess s", "predict s", "export s", "output"), rows)


class _Progress:
    """A rich progress display on stderr: cases done, and tiles of the current case."""

    def __init__(self, total: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=render.err(), transient=True)  # fmt: skip
        self.cases = self.progress.add_task("cases", total=total)
        self.tiles = self.progress.add_task("tiles", total=1)

    def __call__(self, stage: str, case_id: str, done: int, total: int) -> None:
        if stage == "tiles":
            self.progress.update(self.tiles, description=f"{case_id} tiles", completed=done, total=total)
        else:
            self.progress.update(self.cases, completed=done, total=total)


def predict_command(
    ctx: typer.Context,
    input_folder: Annotated[
        Path, typer.Option("-i", "--input", help="Folder with CASE_0000.nii.gz, ... files, or series sub-folders.")
    ],
    output_folder: Annotated[Path, typer.Option("-o", "--output", help="Folder for the segmentations.")],
    task: Annotated[Optional[str], typer.Option("--task", "-t", "-d", help="Task number or name.")] = None,
    config: Annotated[str, typer.Option("--config", "-c", help="Configuration.")] = "3d_fullres",
    trainer: TrainerOption = None,
    network: NetworkOption = None,
    plans: PlansOption = None,
    folds: Annotated[Optional[list[str]], typer.Option("--folds", "-f", help=FOLDS_HELP)] = None,
    checkpoint: Annotated[str, typer.Option("--checkpoint", "-chk", help="best, final or latest.")] = "final",
    no_tta: Annotated[bool, typer.Option("--no-tta", "--disable-tta", help="No test-time mirroring.")] = False,
    step_size: Annotated[float, typer.Option("--step-size", "--step_size", help="Tile step (fraction).")] = 0.5,
    save_probabilities: Annotated[
        bool, typer.Option("--save-probabilities", "--save_probabilities", help="Also write CASE.npz + CASE.json.")
    ] = False,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    precision: Annotated[
        str,
        typer.Option(
            "--precision", help="Forward pass: auto (CUDA fp16; CPU bf16 where native, else fp32), fp32, bf16, fp16."
        ),
    ] = "auto",
    part_id: Annotated[int, typer.Option("--part-id", "--part_id", help="This shard (0-based).")] = 0,
    num_parts: Annotated[int, typer.Option("--num-parts", "--num_parts", help="Number of shards.")] = 1,
    continue_: Annotated[bool, typer.Option("--continue", help="Skip cases whose output exists.")] = False,
    model_dir: Annotated[
        Optional[Path],
        typer.Option(
            "-m", "--model-dir", help="Run or fold folder, a model package (.zip) or an nnU-Net v2 model folder."
        ),
    ] = None,
    lowres_predictions: Annotated[
        Optional[Path],
        typer.Option(
            "--lowres-predictions",
            help="3d_cascade_fullres: folder of 3d_lowres segmentations (default: predicted first, into "
            "OUTPUT/3d_lowres_predictions).",
        ),
    ] = None,
    overlap: Annotated[
        Optional[bool],
        typer.Option(
            "--overlap/--sequential",
            help="Preprocess the next case / export the last one while predicting (default: on CUDA only).",
        ),
    ] = None,
    disable_postprocessing: Annotated[
        bool, typer.Option("--disable-postprocessing", help="Ignore the model's postprocessing.json.")
    ] = False,
    compile_: Annotated[
        bool,
        typer.Option(
            "--compile",
            help="Compile the network with torch.compile: ~1.25x faster fp32 passes on the CPU for large patches, "
            "after a one-time compile of 10-30 s (needs a C++ compiler; falls back to eager with a warning).",
        ),
    ] = False,
    backend: Annotated[
        str,
        typer.Option(
            "--backend",
            help="Where forward passes run: auto (eager torch, or a faster backend when the run is long enough to pay "
            "for its compile/export), torch, compiled (= --compile), onnxruntime, openvino (extras segforge[onnx], "
            "segforge[openvino]; checked against torch on the first tiles).",
        ),
    ] = "auto",
    reuse_constant_tiles: Annotated[
        bool,
        typer.Option(
            "--reuse-constant-tiles/--no-reuse-constant-tiles",
            help="Tiles whose input is one constant value (air around a CT body, zero background) go through the "
            "network once per value; their logits are the same by construction.",
        ),
    ] = True,
) -> None:
    """Segment every case in a folder with a trained model (an ensemble over folds)."""
    from types import SimpleNamespace

    from segforge.inference.cascade import LOWRES_SUBFOLDER, image_channels, is_cascade, lowres_folds, lowres_model_dir
    from segforge.inference.mirroring import mirror_combinations
    from segforge.inference.model_loading import load_ensemble
    from segforge.inference.predictor import CasePipeline, run_jobs
    from segforge.inference.sliding_window import SlidingWindowSettings
    from segforge.inference.work_estimate import expected_evaluations
    from segforge.plugins import get_registries

    registries = get_registries()  # a failed plugin stops here, with how to disable it
    fold_names = parse_folds(folds, list(ctx.args))
    torch_device = resolve_device(device)
    run_dir = find_model_dir(task, model_dir, config, trainer, network, plans, registries, folds=fold_names,
                             checkpoint=checkpoint)  # fmt: skip
    networks, model = load_ensemble(run_dir, fold_names, checkpoint, registries)
    image_io = registries.image_io.get(model.plans.image_io)
    if is_cascade(model):
        _refuse_folder_cases_for_cascade(input_folder, image_io, image_channels(model), registries)
    if lowres_predictions is not None and not is_cascade(model):
        from segforge.errors import UsageError

        raise UsageError(f"--lowres-predictions is for a cascade stage, not {model.configuration.name}",
                         hint="use it with --config 3d_cascade_fullres, or leave it out")  # fmt: skip
    if is_cascade(model) and lowres_predictions is None:  # the first stage runs first (inference/cascade.py)
        lowres_predictions = output_folder / LOWRES_SUBFOLDER
        lowres_dir = lowres_model_dir(run_dir, model.configuration.name, str(model.configuration.previous_stage))
        render.message(f"{model.configuration.name}: predicting {model.configuration.previous_stage} first")
        stage_ctx = SimpleNamespace(args=[])  # the folds are already parsed (extra --folds values included)
        predict_command(stage_ctx, input_folder, lowres_predictions, config=str(model.configuration.previous_stage),
                        folds=lowres_folds(lowres_dir, fold_names), checkpoint=checkpoint, no_tta=no_tta,
                        step_size=step_size, device=device, precision=precision, part_id=part_id,
                        num_parts=num_parts, continue_=continue_, model_dir=lowres_dir, overlap=overlap,
                        disable_postprocessing=disable_postprocessing, compile_=compile_,
                        reuse_constant_tiles=reuse_constant_tiles, backend=backend)  # fmt: skip
    jobs, skipped = jobs_for_folder(input_folder, output_folder, model, image_io, part_id=part_id, num_parts=num_parts,
                                    skip_existing=continue_, overlap=default_overlap(torch_device, overlap),
                                    save_probabilities=save_probabilities)  # fmt: skip
    settings = SlidingWindowSettings(
        tuple(model.configuration.patch_size), step_size=step_size,
        mirror_axes=None if no_tta else model.mirror_axes, precision=precision, compile=compile_,
        reuse_constant_tiles=reuse_constant_tiles, backend="compiled" if compile_ else backend,
        expected_evaluations=expected_evaluations(
            jobs, model, step_size, 1 if no_tta else len(mirror_combinations(model.mirror_axes)), len(networks)
        ),
    )  # fmt: skip
    from segforge.postprocessing.apply import prediction_hook

    postprocess, pp_note = prediction_hook(run_dir, image_io, disabled=disable_postprocessing)
    render.message(f"model {run_dir}")
    render.message(pp_note)
    render.message(f"{len(networks)} fold(s), checkpoint {checkpoint}, {model.configuration.name}, device "
                   f"{torch_device}; {len(jobs)} case(s) to predict, {len(skipped)} skipped")  # fmt: skip
    start = time.perf_counter()
    results = []
    if jobs:
        if is_cascade(model):  # preprocessing adds the lowres one-hot, in this process (no overlap)
            from segforge.inference.cascade import CascadePipeline

            pipeline = CascadePipeline(networks, model, settings, torch_device, lowres_folder=lowres_predictions,
                                       save_probabilities=save_probabilities, registries=registries)  # fmt: skip
            overlap = False
        else:
            pipeline = CasePipeline(networks, model, settings, torch_device, save_probabilities=save_probabilities,
                                    registries=registries)  # fmt: skip
        pipeline.postprocess = postprocess
        progress = _Progress(len(jobs))
        with progress.progress, _compile_warnings_as_messages():
            results = run_jobs(pipeline, jobs, overlap=default_overlap(torch_device, overlap), progress=progress)
    render.show(summary_table(results, skipped))
    if jobs:
        render.message(f"backend {pipeline.window.backend.reason or pipeline.window.backend.requested}")
    render.message(f"{len(results)} case(s) predicted in {time.perf_counter() - start:.1f} s -> {output_folder}")


def _refuse_folder_cases_for_cascade(input_folder: Path, image_io: Any, channels: int, registries: Any) -> None:
    """A cascade's second stage reads its cases with the lowres segmentation as files: series folders are refused
    before the first stage writes anything."""
    from segforge.errors import UsageError
    from segforge.io.folder_cases import folder_cases

    if folder_cases(input_folder, tuple(image_io.file_endings), channels, registries):
        raise UsageError(
            f"{input_folder}: a cascade model cannot read series sub-folders as cases yet",
            hint="convert each series to CASE_0000.nii.gz first (`segforge dicom to-nifti`), or use a 3d_fullres model",
        )


@contextlib.contextmanager
def _compile_warnings_as_messages() -> Iterator[None]:
    """Show a ``--compile`` or backend fallback as one line on stderr when it happens (not Python's format)."""
    import warnings

    from segforge.inference.backends.exported import BackendFallbackWarning
    from segforge.inference.compiled import CompileFallbackWarning

    with warnings.catch_warnings():  # restores showwarning and the filters on exit
        warnings.simplefilter("always", CompileFallbackWarning)
        warnings.simplefilter("always", BackendFallbackWarning)
        original = warnings.showwarning

        def show(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
            if issubclass(category, (CompileFallbackWarning, BackendFallbackWarning)):
                render.message(f"warning: {message}", style="yellow")
            else:
                original(message, category, *args, **kwargs)

        warnings.showwarning = show
        yield


EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": False}


def register(app: typer.Typer) -> None:
    app.command("predict", context_settings=EXTRA_ARGS)(predict_command)
