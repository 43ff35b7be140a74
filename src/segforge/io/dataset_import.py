"""Bring a dataset in as it is shipped: case files -> a raw ``TaskNNN_Name`` folder (``segforge import-dataset``).

nnU-Net users write one conversion script per dataset. Here the caller lists each case's files
(:class:`CaseFiles`; the CLI builds that list from patterns, see :mod:`segforge.io.import_patterns`)
and says what the labels mean; :func:`import_dataset` writes ``imagesTr/CASE_000C<ending>``,
``labelsTr/CASE<ending>``, ``imagesTs/`` (and ``labelsTs/`` for test cases that have labels, for
``segforge evaluate``) and an nnU-Net v2 ``dataset.json`` (``channel_names``, ``labels`` with
regions, ``regions_class_order``, ``file_ending``), then checks the result with
:func:`segforge.io.verify.verify_folder`.

How it stays safe:

- everything is written into a hidden staging folder ``.TaskNNN_Name.importing`` beside the final
  one and renamed into place only after verification, so a failed import never leaves a dataset
  that looks usable; a data error removes the staging folder, an interruption keeps it;
- the import's description (``.segforge-import.json``: every source file, the label map, the mask,
  the mode) is written first; a re-run with the same description resumes (files under their
  final names are complete: they were written atomically) or, once finished, does nothing; a
  different description is refused unless ``overwrite``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from segforge.atomic import atomic_write_json
from segforge.errors import ConfigError, SegforgeError, UsageError
from segforge.io.import_files import OTHER_VALUES, CaseJob, FileJob, write_case
from segforge.io.layouts import TASK_FOLDER_RE, channel_file
from segforge.io.parallel import map_cases

SPEC_FILE = ".segforge-import.json"
STAGING_SUFFIX = ".importing"
Mode = Literal["link", "copy"]


@dataclass(frozen=True)
class CaseFiles:
    """One case as shipped: a file per channel (in the dataset's channel order), its label, an optional mask.

    A key naming several channels (``"R,G,B"``) is one file holding them all (an RGB TIFF or PNG,
    for image IOs that pack channels): dataset.json lists R, G and B, the case has one file.

    ``mask``: voxels where the mask is 0 are set to 0 in every channel (written as converted
    files), so cropping to the nonzero region finds the body even where the images' background
    is not 0 (z-scored MRI). ``test``: the case goes to ``imagesTs`` (its label, if any, to ``labelsTs``).
    """

    case_id: str
    channels: Mapping[str, str | os.PathLike[str]]
    label: str | os.PathLike[str] | None = None
    mask: str | os.PathLike[str] | None = None
    test: bool = False


@dataclass
class ImportSummary:
    output: Path
    training: int = 0
    test: int = 0
    written: int = 0
    skipped: int = 0
    messages: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"imported {self.training} training and {self.test} test case(s) into {self.output} "
            f"({self.written} file(s) written, {self.skipped} already there)"
        )


# -- checking the description ---------------------------------------------------------------------
def parse_label_map(items: Sequence[str] | Mapping[Any, int] | None) -> dict[str, int]:
    """``["0=0,255=1"]`` or ``{255: 1, "*": 0}`` -> ``{"0": 0, "255": 1}`` (keys: source values or ``*``)."""
    if not items:
        return {}
    pairs = list(items.items()) if isinstance(items, Mapping) else [
        tuple(part.split("=", 1)) if "=" in part else (part, "") for item in items for part in item.split(",") if part
    ]  # fmt: skip
    out: dict[str, int] = {}
    for key, value in pairs:
        key, text = str(key).strip(), str(value).strip()
        if not (key == OTHER_VALUES or key.lstrip("-").isdigit()) or not text.isdigit():
            raise UsageError(
                f"label map entry '{key}={text}' is not SOURCE=TARGET",
                hint="e.g. --label-map 0=0,255=1 (whole numbers; '*=0' maps every other value)",
            )
        out[str(int(key)) if key != OTHER_VALUES else key] = int(text)
    return out


def region_order(regions: Mapping[str, Sequence[int]]) -> list[int]:
    """Default ``regions_class_order``: per region, its smallest value that no later region holds.

    Written in order, later regions overwrite earlier ones; this choice makes each exported value
    fall inside exactly the regions that were predicted (BraTS: whole 1-4 -> 2, core 1,3,4 -> 1,
    enhancing 4 -> 4).
    """
    names, order = list(regions), []
    for i, name in enumerate(names):
        later = {v for n in names[i + 1 :] for v in regions[n]}
        own = sorted(set(regions[name]) - later)
        if not own:
            raise UsageError(
                f"region '{name}' has no value outside the later regions",
                hint="list regions from the largest to the smallest, or pass --regions-class-order",
            )
        order.append(own[0])
    return order


def _dataset_json(
    name: str, channels: list[str], labels: Mapping[str, int], regions: Mapping[str, Sequence[int]] | None,
    regions_class_order: Sequence[int] | None, n_train: int, n_test: int, ending: str, description: str,
) -> dict[str, Any]:  # fmt: skip
    from pydantic import ValidationError

    from segforge.config.dataset import DatasetJson
    from segforge.config.jsonio import format_validation_error

    entries: dict[str, Any] = {"background": 0}
    if regions:
        entries.update({k: [int(v) for v in members] for k, members in regions.items()})
    entries.update({k: int(v) for k, v in labels.items() if k != "background"})
    out: dict[str, Any] = {
        "name": name,
        "description": description,
        "channel_names": {str(i): c for i, c in enumerate(n.strip() for key in channels for n in key.split(","))},
        "labels": entries,
        "numTraining": n_train,
        "numTest": n_test,
        "file_ending": ending,
    }
    if regions:
        out["regions_class_order"] = [int(v) for v in (regions_class_order or region_order(regions))]
    try:
        DatasetJson.model_validate(out)
    except ValidationError as exc:
        message = format_validation_error("dataset.json", exc)
        raise UsageError(f"the labels do not form a valid {message}", hint=_LABELS_HINT) from None
    if regions and len(out["regions_class_order"]) != len(regions):
        raise UsageError(f"{len(regions)} region(s) but {len(out['regions_class_order'])} regions_class_order entries",
                         hint="give one label value per region")  # fmt: skip
    return out


_LABELS_HINT = "declare background 0 and labels 1..N without gaps (--label-name vessel=1), or regions (--region)"


def _ending_of(path: Path) -> str:
    from segforge.io.image_io import file_ending_of
    from segforge.plugins import get_registries

    endings = [e for entry in get_registries().image_io for e in entry.component.file_endings]
    return file_ending_of(path, endings)


def _check_cases(cases: Sequence[CaseFiles]) -> list[str]:
    if not cases:
        raise UsageError("no cases to import", hint="check the patterns or the case list")
    channels = list(cases[0].channels)
    seen: set[str] = set()
    for case in cases:
        if not case.case_id or "/" in case.case_id or case.case_id.startswith("."):
            raise UsageError(f"case id '{case.case_id}' cannot be a file name", hint="use letters, digits, - and _")
        if case.case_id in seen:
            raise UsageError(f"case id '{case.case_id}' is given twice", hint="case ids must be unique")
        seen.add(case.case_id)
        if list(case.channels) != channels:
            raise UsageError(
                f"case '{case.case_id}' has channels {list(case.channels)}, the first case {channels}",
                hint="every case needs the same channels in the same order",
            )
        if not case.test and case.label is None:
            raise UsageError(f"training case '{case.case_id}' has no label", hint="give its label or mark it test")
        for path in [*case.channels.values(), case.label, case.mask]:
            if path is not None and not Path(path).is_file():
                raise UsageError(f"{path}: file not found (case '{case.case_id}')", hint="check the case's file paths")
    return channels


def _plan(cases: Sequence[CaseFiles], out: Path, ending: str, mode: Mode, label_map: dict[str, int]) -> list[CaseJob]:
    jobs = []
    for case in cases:
        images, labels = ("imagesTs", "labelsTs") if case.test else ("imagesTr", "labelsTr")
        files = []
        for c, src in enumerate(case.channels.values()):
            src = Path(src)
            dst = channel_file(out / images, case.case_id, c, ending)
            mask = Path(case.mask) if case.mask is not None else None
            action = "image" if mask is not None or _ending_of(src) != ending else mode
            files.append(FileJob(action, src, dst, mask=mask))
        if case.label is not None:
            src = Path(case.label)
            action = "label" if label_map or _ending_of(src) != ending else mode
            files.append(FileJob(action, src, out / labels / f"{case.case_id}{ending}", tuple(label_map.items())))
        jobs.append(CaseJob(case.case_id, tuple(files)))
    return jobs


# -- the folders ---------------------------------------------------------------------------------
def _read_spec(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / SPEC_FILE).read_text())
    except (OSError, ValueError):
        return None


def _output_state(out: Path, spec: dict[str, Any], overwrite: bool) -> bool:
    """True when ``out`` already holds this exact import, finished; False when it is free (after ``overwrite``)."""
    if not out.exists():
        return False
    if _read_spec(out) == spec and (out / "dataset.json").is_file():
        return True
    if not overwrite:
        what = "a different import" if (out / SPEC_FILE).is_file() else "other content"
        raise UsageError(f"output folder {out} already exists with {what}", hint="pass --overwrite, or another --name")
    shutil.rmtree(out)
    return False


def _staging(out: Path, spec: dict[str, Any]) -> Path:
    staging = out.with_name(f".{out.name}{STAGING_SUFFIX}")
    if staging.exists() and _read_spec(staging) != spec:
        shutil.rmtree(staging)  # an interrupted import of something else: ours, hidden, never a dataset
    staging.mkdir(parents=True, exist_ok=True)
    if not (staging / SPEC_FILE).is_file():
        atomic_write_json(staging / SPEC_FILE, spec)
    return staging


def _verify(staging: Path, out_name: str, num_processes: int) -> None:
    from segforge.io.verify import DatasetIntegrityError, verify_folder

    report = verify_folder(staging, num_processes=num_processes)
    if report.errors:
        first, n = report.errors[0], len(report.errors)
        raise DatasetIntegrityError(
            f"the imported {out_name} has {n} problem(s): first: {first.line()}",
            hint=f"{first.fix} (in the source files); nothing was written",
        )


def import_dataset(
    cases: Sequence[CaseFiles],
    name: str,
    *,
    labels: Mapping[str, int] | None = None,
    regions: Mapping[str, Sequence[int]] | None = None,
    regions_class_order: Sequence[int] | None = None,
    label_map: Sequence[str] | Mapping[Any, int] | None = None,
    mode: Mode = "copy",
    file_ending: str | None = None,
    raw_root: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    verify: bool = True,
    num_processes: int = 2,
    show_progress: bool = False,
    description: str = "",
) -> ImportSummary:
    """Write ``cases`` as the raw dataset ``raw_root/name`` (``TaskNNN_Name``); resumable and idempotent.

    ``labels``: name -> value of the label files' values after ``label_map`` (background 0 is
    added); ``regions``: name -> member values (BraTS' whole tumour = 1, 2, 3, 4), written as
    nnU-Net v2 region labels; ``label_map``: source value -> target (``"0=0,255=1"``, ``*`` for
    every other value), applied by writing converted label files; ``mode``: how unconverted
    files get there (``link``: absolute symlinks, ``copy``).
    """
    if mode not in ("link", "copy"):
        raise UsageError(f"mode '{mode}' is neither link nor copy", hint="pass mode='link' or mode='copy'")
    if TASK_FOLDER_RE.match(name) is None:
        raise UsageError(f"dataset name '{name}' is not TaskNNN_Name", hint="e.g. --name Task501_BraTS")
    channels = _check_cases(cases)
    mapping = parse_label_map(label_map)
    if not labels and not regions:
        raise UsageError("no labels declared", hint=_LABELS_HINT)
    ending = file_ending or _ending_of(Path(next(iter(cases[0].channels.values()))))
    if not ending.startswith("."):
        raise UsageError(f"file ending '{ending}' must start with '.'", hint="e.g. --file-ending .nii.gz")
    n_test = sum(c.test for c in cases)
    dj = _dataset_json(name.split("_", 1)[1], channels, labels or {}, regions, regions_class_order,
                       len(cases) - n_test, n_test, ending, description)  # fmt: skip
    if raw_root is None:
        from segforge.settings import get_folders

        raw_root = get_folders().raw.path
    out = Path(raw_root) / name
    spec = {
        "segforge_import": 1, "mode": mode, "label_map": mapping, "dataset_json": dj,
        "cases": [{"id": c.case_id, "channels": {k: str(Path(v).resolve()) for k, v in c.channels.items()},
                   "label": c.label and str(Path(c.label).resolve()), "mask": c.mask and str(Path(c.mask).resolve()),
                   "test": c.test} for c in cases],
    }  # fmt: skip
    summary = ImportSummary(out, training=len(cases) - n_test, test=n_test)
    if _output_state(out, spec, overwrite):
        summary.skipped = sum(len(c.channels) + (c.label is not None) for c in cases)
        return summary
    staging = _staging(out, spec)
    try:
        jobs = _plan(cases, staging, ending, mode, mapping)
        for result in map_cases(write_case, jobs, num_processes, f"importing {name}", show_progress):
            if result.error is not None:
                raise ConfigError(result.error[0], hint=result.error[1])
            summary.written += result.written
            summary.skipped += result.skipped
        atomic_write_json(staging / "dataset.json", dj)
        if verify:
            _verify(staging, name, num_processes)
    except SegforgeError:
        shutil.rmtree(staging, ignore_errors=True)  # bad data: start clean after the fix
        raise
    os.replace(staging, out)
    return summary
