"""Dataset fingerprint extraction: read every training case once, in worker processes.

Per case (as nnU-Net v2's DatasetFingerprintExtractor): read the channels and the label,
crop to the nonzero region, record spacing and shapes before/after cropping, count label
voxels and sample foreground intensities (see :mod:`segforge.planning.intensity`). The
result goes to ``<preprocessed>/<dataset>/fingerprint.json``, written atomically, with a
digest of the raw files; a later run reuses it while the digest matches, so planning again
after a change of network or memory budget costs no re-reading.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from segforge._version import __version__
from segforge.config.fingerprint import CaseFingerprint, Fingerprint
from segforge.config.jsonio import load_model, save_model
from segforge.errors import ConfigError, SegforgeError
from segforge.io.layouts import RawCase, RawDataset
from segforge.planning.intensity import WeightedSamples, pool, sample_foreground, samples_per_case, statistics

FINGERPRINT_FILE = "fingerprint.json"


@dataclass(frozen=True)
class CaseJob:
    """Everything a worker needs for one case (picklable: paths, the IO component, plain data)."""

    case: RawCase
    reader: Any
    num_samples: int
    label_names: dict[int, str]
    allowed_labels: frozenset[int] | None = None  # None: not checked
    num_channels: int | None = None  # None: not checked


def _check_contents(job: CaseJob, images: np.ndarray, seg: np.ndarray) -> None:
    """Refuse channel counts and label values dataset.json does not declare, naming the file.

    Files may hold several channels (an RGB PNG holds three), so the count is only known after
    reading; a 0/255 mask read as it is would otherwise reach training as class 255.
    """
    case = job.case
    if job.num_channels is not None and images.shape[0] != job.num_channels:
        raise ConfigError(
            f"{case.images[0]}: case '{case.case_id}' has {images.shape[0]} channel(s) in {len(case.images)} "
            f"file(s), dataset.json names {job.num_channels}",
            hint="list one channel_names entry per channel the files hold (an RGB file holds 3: R, G, B)",
        )
    if job.allowed_labels is not None:
        undeclared = sorted(set(np.unique(seg).tolist()) - job.allowed_labels)
        if undeclared:
            raise ConfigError(
                f"{case.label}: label value(s) {', '.join(map(str, undeclared[:5]))} not declared in dataset.json "
                f"(declared: {', '.join(map(str, sorted(job.allowed_labels)))})",
                hint="map the file's values to the dataset's labels when importing it (e.g. 255 -> 1 for a 0/255 "
                "mask), or declare them in dataset.json's labels",
            )


@dataclass
class CaseResult:
    """A worker's answer: the case record and its samples, or an error as (message, hint)."""

    record: CaseFingerprint | None = None
    samples: list[WeightedSamples] = field(default_factory=list)
    error: tuple[str, str | None] | None = None


def _class_voxels(seg: np.ndarray, names: dict[int, str]) -> dict[str, int]:
    """Label name (or the value, for values dataset.json does not name) -> voxel count."""
    flat = seg.ravel()
    if flat.size and flat.min() >= 0:
        counts = np.bincount(flat)
        pairs = [(v, int(c)) for v, c in enumerate(counts) if c]
    else:
        values, counts = np.unique(flat, return_counts=True)
        pairs = [(int(v), int(c)) for v, c in zip(values, counts, strict=True)]
    return {names.get(v, str(v)): c for v, c in pairs}


def analyze_case(job: CaseJob) -> CaseResult:
    """Fingerprint of one case; segforge errors come back as values (hints do not survive pickling)."""
    from segforge.preprocessing.cropping import crop_to_nonzero

    case = job.case
    try:
        if case.label is None:
            raise ConfigError(f"training case '{case.case_id}' has no label file", hint="add it to labelsTr")
        images, props = job.reader.read_images(case.images)
        seg, _ = job.reader.read_seg(case.label)
        _check_contents(job, images, seg)
        if seg.shape[1:] != images.shape[1:]:
            raise ConfigError(
                f"{case.label}: label shape {list(seg.shape[1:])} differs from image shape {list(images.shape[1:])}",
                hint="`segforge verify` lists every geometry problem of the dataset",
            )
        cropped, seg_cropped, _ = crop_to_nonzero(images, seg)
        samples = sample_foreground(cropped, seg_cropped[0] > 0, job.num_samples)
        for channel, sample in enumerate(samples):
            if sample.values.size and not np.isfinite(sample.values).all():
                raise ConfigError(
                    f"{case.images[channel]}: image holds NaN or infinite values",
                    hint="`segforge verify` finds them; fix or re-export the image",
                )
        record = CaseFingerprint(
            case_id=case.case_id,
            spacing=[float(s) for s in props.spacing],
            shape_before_crop=[int(s) for s in images.shape[1:]],
            shape_after_crop=[int(s) for s in cropped.shape[1:]],
            class_voxels=_class_voxels(seg, job.label_names),
        )
    except SegforgeError as exc:
        return CaseResult(error=(exc.message, exc.hint))
    return CaseResult(record, samples)


def raw_dataset_digest(ds: RawDataset) -> str:
    """sha256 over dataset.json's content and each case file's name, size and modification time.

    Cheap (no image is read) and sensitive to any replaced, added or removed case file.
    """
    h = hashlib.sha256()
    h.update((ds.path / "dataset.json").read_bytes())
    for case in ds.cases:
        for path in [*case.images, case.label]:
            if path is None:
                continue
            try:
                st = path.stat()
            except OSError:
                raise ConfigError(
                    f"{path}: file not found (listed for case '{case.case_id}')",
                    hint=f"`segforge verify --task {ds.name}` lists every missing file",
                ) from None
            rel = path.relative_to(ds.path) if path.is_relative_to(ds.path) else path
            h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _reader_for(ds: RawDataset, registries: Any) -> tuple[str, Any]:
    from segforge.io.image_io import image_io_for

    reader = image_io_for(ds.file_ending, registries)
    return reader.name, reader


def extract_fingerprint(
    ds: RawDataset, num_processes: int = 2, show_progress: bool = True, registries: Any = None
) -> Fingerprint:
    """Read every training case of ``ds`` (``num_processes`` workers) and build its fingerprint."""
    from segforge.io.parallel import map_cases

    if not ds.cases:
        raise ConfigError(f"{ds.path}: no training cases found", hint="put images in imagesTr and labels in labelsTr")
    digest = raw_dataset_digest(ds)
    io_name, reader = _reader_for(ds, registries)
    names = {v: k for k, v in ds.dataset_json.label_values().items()}
    n_samples = samples_per_case(len(ds.cases))
    allowed = frozenset(ds.dataset_json.allowed_label_values())
    n_channels = ds.dataset_json.num_channels
    jobs = [CaseJob(case, reader, n_samples, names, allowed, n_channels) for case in ds.cases]
    results = map_cases(analyze_case, jobs, num_processes, "fingerprint", show_progress)
    errors = [r.error for r in results if r.error is not None]
    if errors:
        message, hint = errors[0]
        more = f" (and {len(errors) - 1} more case(s))" if len(errors) > 1 else ""
        raise ConfigError(f"{message}{more}", hint=hint)
    records = [r.record for r in results]
    channels = ds.dataset_json.channel_names()
    stats = {str(c): statistics(pool([r.samples[c] for r in results])) for c in range(len(channels))}
    relative = float(np.median([rec.relative_size_after_cropping for rec in records]))
    return Fingerprint(
        dataset_name=ds.name,
        segforge_version=__version__,
        raw_digest=digest,
        image_io=io_name,
        channel_names={str(k): v for k, v in channels.items()},
        labels=dict(ds.dataset_json.label_values()),
        cases=records,
        samples_per_case=n_samples,
        foreground_intensity_properties_per_channel=stats,
        median_relative_size_after_cropping=relative,
    )


def fingerprint_path(dataset_name: str, preprocessed_root: Path | None = None) -> Path:
    """``<preprocessed>/<dataset>/fingerprint.json``."""
    if preprocessed_root is None:
        from segforge.settings import get_folders

        preprocessed_root = get_folders().preprocessed.path
    return Path(preprocessed_root) / dataset_name / FINGERPRINT_FILE


def load_fingerprint(path: Path) -> Fingerprint:
    """Read a fingerprint.json; problems are one-line ConfigErrors naming the file and field."""
    return load_model(path, Fingerprint, hint="re-create it with `segforge fingerprint --task ... --overwrite`")


def _reusable(path: Path, digest: str) -> Fingerprint | None:
    if not path.is_file():
        return None
    try:
        existing = load_fingerprint(path)
    except SegforgeError:  # unreadable or from another format: compute it again
        return None
    return existing if existing.raw_digest == digest else None


def ensure_fingerprint(
    ds: RawDataset,
    preprocessed_root: Path | None = None,
    num_processes: int = 2,
    overwrite: bool = False,
    show_progress: bool = True,
    registries: Any = None,
) -> tuple[Fingerprint, bool]:
    """The dataset's fingerprint and whether an existing file was reused (digest of the raw files matched)."""
    path = fingerprint_path(ds.name, preprocessed_root)
    if not overwrite:
        existing = _reusable(path, raw_dataset_digest(ds))
        if existing is not None:
            return existing, True
    fingerprint = extract_fingerprint(ds, num_processes, show_progress, registries)
    save_model(path, fingerprint)
    return fingerprint, False
