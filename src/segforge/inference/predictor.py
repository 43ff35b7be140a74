"""Predicting a folder of raw cases: preprocess, sliding window, export, with overlap and sharding.

Each case goes through three stages: preprocessing (read, transpose, crop, normalize,
resample), the sliding-window prediction and export (resample back, argmax, write). With
``overlap`` the next case is preprocessed in a worker process while the current one is
predicted, and the previous case is exported in a background thread:

- a *process* for preprocessing, because it is Python/numpy/SimpleITK work whose result
  (the preprocessed image, small) is cheap to send back;
- a *thread* for export, because its input is the logits array (``C x volume`` float32,
  gigabytes for many classes) which a process would receive as a pickled copy; resampling
  and writing run in numpy/scipy/SimpleITK code that mostly releases the GIL.

At most one case waits in each stage, so memory stays bounded (two cases' logits at most).
Sharding (``part_id`` / ``num_parts``) takes every ``num_parts``-th case of the sorted ids, so
shards never write the same file; ``skip_existing`` skips cases whose output exists.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from segforge.errors import SegforgeError, UsageError
from segforge.inference.export import export_prediction
from segforge.inference.sliding_window import SlidingWindowPredictor, SlidingWindowSettings
from segforge.io.image_io import image_io_for

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

    from segforge.inference.model_loading import LoadedModel
    from segforge.preprocessing.preprocessor import CasePreprocessor, PreprocessedCase

#: (stage, case_id, done, total): "tiles" progress of the current case, "case" when one finishes
ProgressFn = Callable[[str, str, int, int], None]


@dataclass(frozen=True)
class CaseJob:
    """One case to predict: its channel files in order and where its segmentation goes."""

    case_id: str
    images: tuple[Path, ...]
    output: Path
    #: the image IO that reads ``images`` when it is not the model's (a DICOM series folder's); None: the model's
    reader: Any = None


@dataclass
class CaseResult:
    """What happened to one case (seconds per stage; ``status`` done or skipped)."""

    case_id: str
    output: Path
    status: str
    shape: tuple[int, ...] = ()
    seconds: dict[str, float] = field(default_factory=dict)


# -- listing ---------------------------------------------------------------------------------
def input_file_ending(folder: Path, endings: Sequence[str]) -> str:
    """The image-IO ending used by ``CASE_0000`` files in ``folder`` (longest ending first)."""
    if not folder.is_dir():
        raise UsageError(f"input folder {folder} does not exist", hint="pass the folder holding CASE_0000 files")
    names = [p.name for p in folder.iterdir() if not p.name.startswith(".")]
    for ending in sorted(endings, key=len, reverse=True):
        if any(n.endswith(f"_0000{ending}") for n in names):
            return ending
    raise UsageError(
        f"no images named CASE_0000<ending> in {folder} (readable endings: {', '.join(endings)})",
        hint="name each case's channel files CASE_0000.nii.gz, CASE_0001.nii.gz, ...",
    )


def segmentation_ending(image_ending: str) -> str:
    """The ending segmentations of ``image_ending`` images get: the same unless the image IO says otherwise.

    JPEG is lossy, so the natural-image IO writes segmentations of JPEG images as PNG.
    """
    from segforge.errors import SegforgeError
    from segforge.io.image_io import image_io_for

    try:
        choose = getattr(image_io_for(image_ending), "segmentation_ending", None)
    except SegforgeError:  # an IO only the caller's registries know keeps the ending
        return image_ending
    return choose(image_ending) if choose is not None else image_ending


def shard(case_ids: Sequence[str], part_id: int, num_parts: int) -> list[str]:
    """Every ``num_parts``-th of the sorted ids, starting at ``part_id`` (disjoint, union = all)."""
    if num_parts < 1 or not 0 <= part_id < num_parts:
        raise UsageError(
            f"--part-id {part_id} / --num-parts {num_parts} is not a valid shard",
            hint="use 0 <= part-id < num-parts, e.g. --part-id 0 --num-parts 2 and --part-id 1 --num-parts 2",
        )
    return sorted(case_ids)[part_id::num_parts]


def list_jobs(
    input_folder: Path,
    output_folder: Path,
    endings: Sequence[str],
    num_channels: int,
    *,
    part_id: int = 0,
    num_parts: int = 1,
    skip_existing: bool = False,
) -> tuple[list[CaseJob], list[CaseJob]]:
    """``(to do, skipped)`` for this shard; channels are checked for every case of the folder first."""
    from segforge.io.folder_cases import folder_cases
    from segforge.io.layouts import case_files_from_folder

    input_folder, output_folder = Path(input_folder), Path(output_folder)
    series = folder_cases(input_folder, tuple(endings), num_channels)  # one sub-folder per case (DICOM series)
    if series is not None:
        chosen = set(shard([c.case_id for c in series], part_id, num_parts))
        jobs = [CaseJob(c.case_id, (c.folder,), output_folder / f"{c.case_id}{c.output_ending}", reader=c.reader)
                for c in series if c.case_id in chosen]  # fmt: skip
        if not skip_existing:
            return jobs, []
        return [j for j in jobs if not j.output.exists()], [j for j in jobs if j.output.exists()]
    ending = input_file_ending(input_folder, endings)
    files = case_files_from_folder(input_folder, ending, num_channels)  # an RGB PNG holds 3 channels in one file
    out_ending = segmentation_ending(ending)
    jobs = [CaseJob(cid, tuple(files[cid]), output_folder / f"{cid}{out_ending}")
            for cid in shard(list(files), part_id, num_parts)]  # fmt: skip
    if not skip_existing:
        return jobs, []
    return [j for j in jobs if not j.output.exists()], [j for j in jobs if j.output.exists()]


# -- the pipeline ------------------------------------------------------------------------------
class CasePipeline:
    """Preprocess -> sliding window -> export for one trained model (an ensemble of folds)."""

    def __init__(
        self,
        networks: Sequence[nn.Module],
        model: LoadedModel,
        settings: SlidingWindowSettings,
        device: torch.device | str = "cpu",
        *,
        save_probabilities: bool = False,
        registries: Any = None,
    ) -> None:
        from segforge.preprocessing.preprocessor import CasePreprocessor

        if registries is None:
            from segforge.plugins import get_registries

            registries = get_registries()
        self.model, self.registries = model, registries
        self.plans, self.conf = model.plans, model.configuration
        self.image_io = registries.image_io.get(self.plans.image_io)
        self.preprocessor = CasePreprocessor(self.plans, [self.conf.name], image_io=self.image_io,
                                             registries=registries)  # fmt: skip
        self.window = SlidingWindowPredictor(networks, settings, device)
        self.save_probabilities = save_probabilities
        #: applied to each label map before it is written (e.g. postprocessing.json's rules); None: nothing
        self.postprocess: Callable[[np.ndarray], np.ndarray] | None = None

    def preprocess(self, job: CaseJob) -> PreprocessedCase:
        return _preprocess_with(self.preprocessor, job)

    def predict(self, case: PreprocessedCase, progress: Callable[[int, int], None] | None = None) -> Any:
        return self.window.predict_logits(case.data, progress)

    def export(self, logits: Any, case: PreprocessedCase, job: CaseJob) -> Path:
        # a series folder's segmentation goes to the IO of its output ending (NIfTI), not to the model's
        writer = self.image_io if job.reader is None else image_io_for(job.output, self.registries)
        path = export_prediction(logits, case.props, self.plans, self.conf, job.output, image_io=writer,
                                 save_probabilities=self.save_probabilities, postprocess=self.postprocess)  # fmt: skip
        return path


def _preprocess_with(pre: CasePreprocessor, job: CaseJob) -> PreprocessedCase:
    ident = pre.data_identifiers[0]
    if job.reader is not None:  # a series folder: read by its own IO, preprocessed as the model's cases are
        from segforge.preprocessing.preprocessor import source_files

        data, props = job.reader.read_images(list(job.images))
        return pre.run_arrays(data, None, props, job.case_id, [ident], source_files(job.images))[ident]
    return pre.run_files(list(job.images), None, job.case_id, [ident])[ident]


# -- worker process for preprocessing -----------------------------------------------------------
_WORKER_PRE: CasePreprocessor | None = None


def _init_worker(pre: CasePreprocessor) -> None:
    global _WORKER_PRE
    _WORKER_PRE = pre


def _worker_preprocess(job: CaseJob) -> tuple[Any, float]:
    """Preprocess in the worker; segforge errors come back as values (their hint would not survive pickling)."""
    start = time.perf_counter()
    try:
        return _preprocess_with(_WORKER_PRE, job), time.perf_counter() - start
    except SegforgeError as exc:
        return ("error", type(exc).__name__, exc.message, exc.hint, exc.exit_code), 0.0


def _unwrap(value: Any) -> Any:
    if isinstance(value, tuple) and len(value) == 5 and value[0] == "error":
        err = SegforgeError(value[2], hint=value[3])
        err.exit_code = value[4]
        raise err
    return value


def _mp_context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


class _Prefetcher:
    """Preprocesses the job after the current one in a worker process (or inline without overlap)."""

    def __init__(self, pipeline: CasePipeline, jobs: list[CaseJob], overlap: bool) -> None:
        self.pipeline, self.jobs = pipeline, jobs
        self.pool = None
        if overlap and len(jobs) > 1:
            self.pool = ProcessPoolExecutor(1, mp_context=_mp_context(), initializer=_init_worker,
                                            initargs=(pipeline.preprocessor,))  # fmt: skip
        self.pending: dict[int, Future] = {}

    def _submit(self, i: int) -> None:
        if self.pool is not None and i < len(self.jobs) and i not in self.pending:
            self.pending[i] = self.pool.submit(_worker_preprocess, self.jobs[i])

    def get(self, i: int) -> tuple[PreprocessedCase, float]:
        self._submit(i)
        future = self.pending.pop(i, None)
        if future is None:
            start = time.perf_counter()
            case = self.pipeline.preprocess(self.jobs[i])
            return case, time.perf_counter() - start
        self._submit(i + 1)  # queued behind case i: the worker starts it as soon as case i is done
        case, seconds = future.result()
        return _unwrap(case), seconds

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def run_jobs(
    pipeline: CasePipeline, jobs: list[CaseJob], *, overlap: bool = True, progress: ProgressFn | None = None
) -> list[CaseResult]:
    """Predict ``jobs`` in order; returns one result per job (exceptions propagate after cleanup)."""
    results: list[CaseResult] = []
    prefetch = _Prefetcher(pipeline, jobs, overlap)
    exporter = ThreadPoolExecutor(1) if overlap else None
    pending: Future | None = None
    try:
        for i, job in enumerate(jobs):
            case, pre_s = prefetch.get(i)
            result = CaseResult(job.case_id, job.output, "done", tuple(case.data.shape[1:]), {"preprocess": pre_s})
            start = time.perf_counter()
            tiles = None if progress is None else (lambda d, t, cid=job.case_id: progress("tiles", cid, d, t))
            logits = pipeline.predict(case, tiles)
            result.seconds["predict"] = time.perf_counter() - start
            if pending is not None:
                pending.result()  # at most one export waits: bounds memory to two cases' logits
            pending = _start_export(pipeline, exporter, logits, case, job, result)
            del logits, case
            results.append(result)
            if progress is not None:
                progress("case", job.case_id, i + 1, len(jobs))
        if pending is not None:
            pending.result()
    finally:
        if exporter is not None:
            exporter.shutdown(wait=True)
        prefetch.close()
    return results


def _start_export(
    pipeline: CasePipeline, exporter: ThreadPoolExecutor | None, logits: Any, case: Any, job: CaseJob, result: Any
) -> Future | None:
    def run() -> None:
        start = time.perf_counter()
        pipeline.export(logits, case, job)
        result.seconds["export"] = time.perf_counter() - start

    if exporter is None:
        run()
        return None
    return exporter.submit(run)
