"""Medical Segmentation Decathlon folder -> segforge raw Task folder (``segforge convert-msd``).

Does what nnU-Net v1's ``nnUNet_convert_decathlon_task`` does: images become one file per
channel (``CASE_0000.nii.gz``, ...; MSD's 4D multi-modal files are split keeping the 3D
geometry), 3D images and labels are copied byte for byte, and dataset.json is rewritten to
point at the new names. Every file is written atomically and dataset.json last, so an
interrupted run leaves only complete files and a re-run finishes the job: an output that
exists under its final name is complete and is skipped.
"""

from __future__ import annotations

import filecmp
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from segforge.atomic import TMP_SUFFIX, atomic_path
from segforge.config.dataset import DatasetJson, TrainingEntry, load_dataset_json
from segforge.errors import ConfigError, SegforgeError, UsageError
from segforge.io.layouts import TASK_FOLDER_RE, channel_file
from segforge.io.parallel import map_cases

MSD_ENDING = ".nii.gz"


@dataclass(frozen=True)
class CaseJob:
    """What to do for one case; plain data so it can travel to a worker process."""

    case_id: str
    image: Path
    label: Path | None
    images_out: Path
    labels_out: Path
    num_channels: int


@dataclass
class CaseResult:
    written: int = 0
    skipped: int = 0
    error: tuple[str, str | None] | None = None  # (message, hint): SegforgeError hints do not pickle


@dataclass
class ConvertSummary:
    output: Path
    converted: int = 0
    skipped: int = 0
    files_written: int = 0
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return f"converted {self.converted} case(s), skipped {self.skipped} already complete, into {self.output}"


# -- per-case work (runs in worker processes) ----------------------------------------------------
def _copy_file(src: Path, dst: Path) -> bool:
    """Atomically copy ``src`` to ``dst``; False when ``dst`` already holds the same bytes."""
    if dst.exists():
        if filecmp.cmp(src, dst, shallow=False):
            return False
        raise ConfigError(
            f"{dst} exists with different content than {src}",
            hint="pass --overwrite to convert again from scratch, or choose another --task-id",
        )
    with atomic_path(dst, suffix=MSD_ENDING) as tmp:
        shutil.copyfile(src, tmp)
    return True


def _image_dimension(path: Path) -> tuple[int, int]:
    """(dimension, components per pixel) from the header only."""
    import SimpleITK as sitk

    from segforge.io.image_io import read_itk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        read_itk(path)  # raises the one-line "cannot read" error
        raise
    return reader.GetDimension(), reader.GetNumberOfComponents()


def _convert_image(job: CaseJob) -> int:
    """Write the case's channel files; returns how many files were written."""
    from segforge.io.image_io import SimpleITKIO

    outputs = [channel_file(job.images_out, job.case_id, c, MSD_ENDING) for c in range(job.num_channels)]
    dim, components = _image_dimension(job.image)
    if dim <= 3 and components == 1:
        if job.num_channels != 1:
            raise ConfigError(
                f"{job.image}: a single-channel image, but dataset.json's modality lists {job.num_channels} channels",
                hint="fix 'modality' in dataset.json or the image file",
            )
        return int(_copy_file(job.image, outputs[0]))
    if all(p.exists() for p in outputs):
        return 0
    io = SimpleITKIO()
    array, props = io.read_4d(job.image)
    if array.shape[0] != job.num_channels:
        raise ConfigError(
            f"{job.image}: has {array.shape[0]} channels, but dataset.json's modality lists {job.num_channels}",
            hint="fix 'modality' in dataset.json or the image file",
        )
    written = 0
    for channel, out in zip(array, outputs, strict=True):
        if not out.exists():
            io.write_image(channel, out, props, dtype=None)
            written += 1
    return written


def convert_case(job: CaseJob) -> CaseResult:
    """Convert one case; errors come back as values (message, hint) rather than exceptions."""
    try:
        before = _convert_image(job)
        if job.label is not None:
            before += int(_copy_file(job.label, job.labels_out / f"{job.case_id}{MSD_ENDING}"))
    except SegforgeError as exc:
        return CaseResult(error=(exc.message, exc.hint))
    except OSError as exc:
        return CaseResult(error=(f"{job.case_id}: {exc}", "check free disk space and permissions"))
    return CaseResult(written=before, skipped=int(before == 0))


# -- planning the conversion ----------------------------------------------------------------------
def _source_cases(folder: Path) -> list[str]:
    """Case ids of ``*.nii.gz`` files in an MSD folder, skipping hidden and macOS ``._`` files."""
    if not folder.is_dir():
        return []
    return sorted(
        p.name[: -len(MSD_ENDING)]
        for p in folder.iterdir()
        if p.name.endswith(MSD_ENDING) and not p.name.startswith(".") and p.is_file()
    )


def _target_name(src: Path, task_id: int | None) -> str:
    match = TASK_FOLDER_RE.match(src.name)
    if task_id is None and match is None:
        raise UsageError(
            f"cannot tell the task number from the folder name '{src.name}' (expected TaskXX_Name)",
            hint="pass --task-id N",
        )
    number = task_id if task_id is not None else int(match.group(1))
    if not 0 <= number <= 999:
        raise UsageError(f"task id {number} is out of range 0..999", hint="pass --task-id with at most 3 digits")
    name = match.group(2) if match else src.name
    return f"Task{number:03d}_{name}"


def _check_source(src: Path) -> DatasetJson:
    if not src.is_dir():
        raise UsageError(f"MSD folder {src} does not exist", hint="pass the unpacked TaskXX_Name folder")
    for needed in ("dataset.json", "imagesTr", "labelsTr"):
        if not (src / needed).exists():
            raise UsageError(
                f"{src} is not an MSD task folder: {needed} is missing",
                hint="pass the unpacked Medical Segmentation Decathlon folder (imagesTr, labelsTr, dataset.json)",
            )
    return load_dataset_json(src / "dataset.json")


def _plan_jobs(src: Path, out: Path, n: int) -> tuple[list[CaseJob], list[str], list[str]]:
    train, test = _source_cases(src / "imagesTr"), _source_cases(src / "imagesTs")
    if not train:
        raise UsageError(f"{src / 'imagesTr'} holds no {MSD_ENDING} images", hint="check the MSD folder is complete")
    jobs = []
    for case_id in train:
        label = src / "labelsTr" / f"{case_id}{MSD_ENDING}"
        if not label.is_file():
            raise UsageError(
                f"{label} is missing for training image {case_id}{MSD_ENDING}",
                hint="add the label or remove the image from imagesTr",
            )
        jobs.append(CaseJob(case_id, src / "imagesTr" / f"{case_id}{MSD_ENDING}", label,
                            out / "imagesTr", out / "labelsTr", n))  # fmt: skip
    for case_id in test:
        jobs.append(CaseJob(case_id, src / "imagesTs" / f"{case_id}{MSD_ENDING}", None, out / "imagesTs", out, n))
    return jobs, train, test


def _output_dataset_json(dj: DatasetJson, train: list[str], test: list[str]) -> DatasetJson:
    training = [TrainingEntry(image=f"./imagesTr/{c}{MSD_ENDING}", label=f"./labelsTr/{c}{MSD_ENDING}") for c in train]
    return dj.model_copy(
        update={
            "training": training,
            "test": [f"./imagesTs/{c}{MSD_ENDING}" for c in test],
            "numTraining": len(train),
            "numTest": len(test),
        }
    )


def _expected_files(jobs: list[CaseJob]) -> set[Path]:
    files = {Path("dataset.json")}
    for job in jobs:
        folder = "imagesTr" if job.label is not None else "imagesTs"
        for c in range(job.num_channels):
            files.add(Path(folder) / f"{job.case_id}_{c:04d}{MSD_ENDING}")
        if job.label is not None:
            files.add(Path("labelsTr") / f"{job.case_id}{MSD_ENDING}")
    return files


def _prepare_output(out: Path, jobs: list[CaseJob], new_json: dict, overwrite: bool) -> bool:
    """Make ``out`` ready; True when it already holds this exact conversion's dataset.json."""
    if not out.exists():
        return False
    if overwrite:
        shutil.rmtree(out)
        return False
    expected = _expected_files(jobs)
    for path in sorted(out.rglob("*")):
        rel = path.relative_to(out)
        if path.is_file() and path.name.startswith(".") and TMP_SUFFIX in path.name:
            path.unlink(missing_ok=True)  # leftover of an interrupted atomic write (.name.xxx.tmp)
            continue
        if path.is_dir() or any(part.startswith(".") for part in rel.parts):
            continue  # folders and hidden files
        if rel not in expected:
            raise UsageError(
                f"output folder {out} already exists with other content ({rel})",
                hint="pass --overwrite to replace it, or choose another --task-id",
            )
    if (out / "dataset.json").is_file():
        import json

        if json.loads((out / "dataset.json").read_text()) != new_json:
            raise UsageError(
                f"output folder {out} already exists with a different dataset.json",
                hint="pass --overwrite to replace it, or choose another --task-id",
            )
        return True
    return False


def convert_msd(
    src: str | os.PathLike[str],
    raw_root: Path | None = None,
    task_id: int | None = None,
    num_processes: int = 2,
    overwrite: bool = False,
    show_progress: bool = True,
) -> ConvertSummary:
    """Convert an MSD folder into ``raw_root/TaskNNN_Name``; resumable and idempotent."""
    src = Path(src).expanduser().resolve()
    if raw_root is None:
        from segforge.settings import get_folders

        raw_root = get_folders().raw.path
    dj = _check_source(src)
    out = Path(raw_root) / _target_name(src, task_id)
    if out.resolve() == src:
        raise UsageError(f"output folder {out} is the source folder", hint="pass another --task-id")
    jobs, train, test = _plan_jobs(src, out, dj.num_channels)
    new_dj = _output_dataset_json(dj, train, test)
    done = _prepare_output(out, jobs, new_dj.to_v1_dict(), overwrite)
    summary = ConvertSummary(output=out)
    results = map_cases(convert_case, jobs, num_processes, f"converting {src.name}", show_progress)
    for job, result in zip(jobs, results, strict=True):
        if result.error is not None:
            message, hint = result.error
            raise ConfigError(message, hint=hint)
        summary.files_written += result.written
        if job.label is not None:
            summary.converted += int(not result.skipped)
            summary.skipped += result.skipped
    if not done:
        new_dj.save(out / "dataset.json")
    return summary
