"""Ensembling folders of probability files: average case by case, argmax, write the segmentation.

Each input folder holds ``CASE.npz`` + ``CASE.json`` as ``segforge predict --save-probabilities``
(or end-of-training validation with ``--npz``) writes them: softmax probabilities already in the
raw image's geometry, so averaging needs no resampling (nnU-Net's ``nnUNetv2_ensemble`` does the
same with its .npz/.pkl pairs). Before anything is written, every case's JSON sidecars are
compared across the folders (same cases, labels, shape and image geometry), so a mismatch is
one error naming both files and leaves the output folder untouched. Then cases are processed
one at a time (in worker processes with ``num_processes`` > 1): only one case's arrays are in
memory per worker. The segmentation is written last, so its presence means the case is done
(``skip_existing`` relies on that).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from segforge.config.jsonio import load_model
from segforge.errors import ConfigError, SegforgeError, UsageError
from segforge.inference.export import ProbabilitiesInfo, read_probabilities, write_probabilities

PROBS_HINT = "ensemble probabilities of the same cases for the same task (segforge predict --save-probabilities)"
REDO_HINT = "re-run `segforge predict --save-probabilities`"


@dataclass(frozen=True)
class EnsembleJob:
    """One case: its probability files (one per input folder) and where its outputs go."""

    case_id: str
    sources: tuple[Path, ...]
    segmentation: Path
    probabilities: Path | None


@dataclass(frozen=True)
class EnsembleResult:
    """What :func:`ensemble_folders` did: the segmentations written and the cases skipped as done."""

    written: list[Path]
    skipped: list[str]


def probability_cases(folder: Path) -> dict[str, Path]:
    """``case_id -> CASE.npz`` for every ``.npz`` in ``folder`` that has its ``.json`` sidecar."""
    if not folder.is_dir():
        raise UsageError(f"input folder {folder} does not exist", hint="pass folders written with --save-probabilities")
    return {p.stem: p for p in sorted(folder.glob("*.npz")) if p.with_suffix(".json").is_file()}


def _shown(names: Sequence[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def matching_cases(folders: Sequence[Path]) -> dict[str, tuple[Path, ...]]:
    """``case_id -> (npz of folder 1, npz of folder 2, ...)``; every folder must hold the same cases."""
    if len(folders) < 2:
        raise UsageError(f"ensembling needs at least 2 input folders, got {len(folders)}", hint="pass -i DIR1 DIR2 ...")
    listings = [probability_cases(Path(f)) for f in folders]
    first = listings[0]
    if not first:
        raise UsageError(f"no probability files (CASE.npz + CASE.json) in {folders[0]}", hint=PROBS_HINT)
    for folder, listing in zip(folders[1:], listings[1:], strict=True):
        missing = sorted(set(first) - set(listing))
        extra = sorted(set(listing) - set(first))
        if missing or extra:
            what = f"lacks {_shown(missing)}" if missing else f"has cases {folders[0]} lacks: {_shown(extra)}"
            raise UsageError(f"{folder} {what} (compared with {folders[0]})", hint=PROBS_HINT)
    return {case: tuple(listing[case] for listing in listings) for case in first}


def check_agreement(first: ProbabilitiesInfo, first_file: Path, other: ProbabilitiesInfo, other_file: Path) -> None:
    """Labels, array shape and image geometry of two probability files must agree (ConfigError naming both)."""
    problem = None
    if list(other.labels) != list(first.labels):
        problem = f"labels {list(other.labels)} differ from {list(first.labels)}"
    elif list(other.shape) != list(first.shape):
        problem = f"shape {list(other.shape)} differs from {list(first.shape)}"
    elif diffs := first.image.geometry_differences(other.image):
        field = diffs[0]
        problem = f"image {field} {other.image.describe(field)} differs from {first.image.describe(field)}"
    if problem is not None:
        raise ConfigError(f"{other_file}: {problem} in {first_file}", hint=PROBS_HINT)


def _sidecar(npz: Path) -> ProbabilitiesInfo:
    return load_model(npz.with_suffix(".json"), ProbabilitiesInfo, hint=REDO_HINT)


def check_cases(cases: dict[str, tuple[Path, ...]]) -> None:
    """Compare every case's sidecars across the folders before anything is written (reads JSON only)."""
    for sources in cases.values():
        first = _sidecar(sources[0])
        for other in sources[1:]:
            check_agreement(first, sources[0].with_suffix(".json"), _sidecar(other), other.with_suffix(".json"))


def average_probabilities(sources: Sequence[Path]) -> tuple[np.ndarray, ProbabilitiesInfo]:
    """The mean of the files' probabilities (float32) and its info; reads one file at a time.

    The info is the first file's, with the plans and configuration names of every distinct
    input joined by ``+`` (e.g. ``2d+3d_fullres``), so a saved mean says what it averages.
    """
    total, info = read_probabilities(sources[0])
    total = total.astype(np.float32)
    plans, configs = [info.plans_name], [info.configuration]
    for source in sources[1:]:
        probs, this = read_probabilities(source)
        check_agreement(info, Path(sources[0]), this, Path(source))
        total += probs
        plans.append(this.plans_name)
        configs.append(this.configuration)
        del probs
    total /= len(sources)
    joined = {"plans_name": "+".join(dict.fromkeys(plans)), "configuration": "+".join(dict.fromkeys(configs))}
    return total, info.model_copy(update=joined)


def is_region_based(labels: Sequence[int]) -> bool:
    """Region-based (sigmoid) probabilities have no background channel: their labels are the
    ``regions_class_order``; softmax probabilities always start with background 0."""
    return 0 not in labels


def segmentation_from(probabilities: np.ndarray, labels: Sequence[int]) -> np.ndarray:
    """The label map of (averaged) probabilities, as export makes it from one model's.

    Softmax: the label of the most probable channel (ties go to the lower channel, as argmax
    does). Regions: each region's label where its probability exceeds 0.5, later regions over
    earlier ones (nnU-Net's ``regions_class_order``).
    """
    values = np.asarray(labels)
    dtype = np.uint8 if values.max() < 256 else np.uint16
    if not is_region_based(labels):
        return values.astype(dtype)[np.argmax(probabilities, axis=0)]
    seg = np.zeros(probabilities.shape[1:], dtype=dtype)
    for channel, value in zip(probabilities, values, strict=True):
        seg[channel > 0.5] = value
    return seg


def ensemble_case(job: EnsembleJob, image_io: Any) -> Path:
    """Average one case, write its probabilities (optional) and then its segmentation."""
    mean, info = average_probabilities(job.sources)
    seg = segmentation_from(mean, info.labels)
    if job.probabilities is not None:
        write_probabilities(job.probabilities, mean.astype(np.float16), info)
    del mean
    image_io.write_seg(seg, job.segmentation, info.image)
    return job.segmentation


def _worker(payload: tuple[EnsembleJob, Any]) -> Any:
    """Worker entry: the written path, or the error as a value (hints do not survive pickling)."""
    job, image_io = payload
    try:
        return ensemble_case(job, image_io)
    except SegforgeError as exc:
        return ("error", exc.message, exc.hint)


def plan_jobs(
    cases: dict[str, tuple[Path, ...]], output: Path, file_ending: str, save_probabilities: bool, skip_existing: bool
) -> tuple[list[EnsembleJob], list[str]]:
    """The jobs to run and the case ids skipped because their segmentation exists (``skip_existing``)."""
    jobs, skipped = [], []
    for case_id, sources in cases.items():
        seg = output / f"{case_id}{file_ending}"
        if skip_existing and seg.is_file() and (not save_probabilities or (output / f"{case_id}.json").is_file()):
            skipped.append(case_id)
            continue
        probs = output / f"{case_id}.npz" if save_probabilities else None
        jobs.append(EnsembleJob(case_id, sources, seg, probs))
    return jobs, skipped


def ensemble_folders(
    inputs: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    save_probabilities: bool = False,
    num_processes: int = 1,
    skip_existing: bool = False,
    file_ending: str = ".nii.gz",
    image_io: Any = None,
    show_progress: bool = False,
) -> EnsembleResult:
    """Average the probabilities of 2+ folders case by case and write ``OUTPUT/CASE<file_ending>``.

    With ``save_probabilities`` also ``OUTPUT/CASE.npz`` + ``.json`` (the averaged probabilities,
    float16). ``skip_existing`` keeps cases whose outputs exist (``--continue``).
    """
    from segforge.io.parallel import map_cases

    folders = [Path(p) for p in inputs]
    output = Path(output)
    if num_processes < 1:
        raise UsageError(f"--num-processes must be at least 1, got {num_processes}", hint="pass -np 1")
    if output.resolve() in {f.resolve() for f in folders}:
        raise UsageError(f"output folder {output} is one of the inputs", hint="write the ensemble to a new folder")
    cases = matching_cases(folders)
    check_cases(cases)
    if image_io is None:  # the IO registered for the segmentations' ending (PNG: natural2d)
        from segforge.io.image_io import image_io_for

        image_io = image_io_for(file_ending)
    jobs, skipped = plan_jobs(cases, output, file_ending, save_probabilities, skip_existing)
    output.mkdir(parents=True, exist_ok=True)
    results = map_cases(_worker, [(j, image_io) for j in jobs], num_processes, description="ensembling",
                        show=show_progress)  # fmt: skip
    for result in results:
        if isinstance(result, tuple):
            raise ConfigError(result[1], hint=result[2])
    return EnsembleResult(written=list(results), skipped=skipped)
