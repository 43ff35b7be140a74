"""Raw dataset folders: finding a task by number or name and listing its cases.

segforge keeps raw data in nnU-Net v1's Task layout (``TaskNNN_Name/{imagesTr, labelsTr,
imagesTs, dataset.json}`` with images named ``CASE_0000.nii.gz`` per channel) and also reads
nnU-Net v2's ``DatasetNNN_Name`` folders. A file holds one channel, except for image IO that
packs several into one (an RGB PNG: see :func:`packs_channels`). Opening a dataset lists the files each case *should*
have without checking them, so :mod:`segforge.io.verify` can report every missing file at once.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from segforge.config.dataset import DatasetJson, load_dataset_json
from segforge.errors import ConfigError, UsageError

#: ``Task004_Hippocampus`` (v1 / MSD) or ``Dataset004_Hippocampus`` (v2)
TASK_FOLDER_RE = re.compile(r"^(?:Task|Dataset)(\d+)_(.+)$")
CHANNEL_RE = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")
RAW_HINT = "convert an MSD folder with `segforge convert-msd FOLDER`, or point SEGFORGE_RAW at your raw data folder"


@dataclass(frozen=True)
class RawCase:
    """One case: its image files in channel order (``_0000``, ``_0001``, ...) and its label (None for test)."""

    case_id: str
    images: list[Path]
    label: Path | None = None


@dataclass
class RawDataset:
    """A raw dataset folder with its dataset.json and the files each case is expected to have."""

    path: Path
    name: str
    task_id: int
    dataset_json: DatasetJson
    num_channels: int
    file_ending: str
    cases: list[RawCase] = field(default_factory=list)
    test_cases: list[RawCase] = field(default_factory=list)

    @property
    def labels_folder(self) -> Path:
        return self.path / "labelsTr"

    @property
    def images_folder(self) -> Path:
        return self.path / "imagesTr"

    @property
    def test_folder(self) -> Path:
        return self.path / "imagesTs"


def channel_file(folder: Path, case_id: str, channel: int, file_ending: str) -> Path:
    """``folder/CASE_000C<ending>``, nnU-Net's name for channel C of a case."""
    return folder / f"{case_id}_{channel:04d}{file_ending}"


# -- finding a task -----------------------------------------------------------------------------
def task_id_of(name: str) -> int | None:
    """The number in ``TaskNNN_Name`` / ``DatasetNNN_Name`` (also MSD's ``Task04_Name``), else None."""
    match = TASK_FOLDER_RE.match(name)
    return int(match.group(1)) if match else None


def list_tasks(raw_root: Path) -> dict[int, list[Path]]:
    """Task/Dataset folders directly under ``raw_root`` by id (several when ids clash)."""
    found: dict[int, list[Path]] = defaultdict(list)
    if raw_root.is_dir():
        for child in sorted(raw_root.iterdir()):
            task_id = task_id_of(child.name)
            if task_id is not None and child.is_dir():
                found[task_id].append(child)
    return dict(found)


def resolve_task(task: str | int, raw_root: Path | None = None) -> Path:
    """The raw folder for ``4``, ``"4"``, ``"004"``, ``"Task004_Hippocampus"`` or ``"Dataset004_Hippocampus"``."""
    if raw_root is None:
        from segforge.settings import get_folders

        raw_root = get_folders().raw.path
    raw_root = Path(raw_root)
    text = str(task).strip()
    if ("/" in text or os.sep in text) and Path(text).is_dir():  # a folder given directly
        return Path(text)
    if text.isdigit():
        task_id = int(text)
    elif (task_id := task_id_of(text)) is None:
        raise UsageError(
            f"'{task}' is not a task: use its number (4, 004) or folder name (Task004_Name)", hint=RAW_HINT
        )
    elif (raw_root / text).is_dir():
        return raw_root / text
    tasks = list_tasks(raw_root)
    matches = tasks.get(task_id, [])
    if len(matches) > 1:
        raise UsageError(
            f"task {task_id} is ambiguous in {raw_root}: {matches[0].name} and {matches[1].name}",
            hint="rename or remove one of the folders, or pass the full folder name",
        )
    if not matches:
        available = ", ".join(p.name for tid in sorted(tasks) for p in tasks[tid]) or "none"
        where = "" if raw_root.is_dir() else " (the folder does not exist)"
        raise UsageError(f"no task {task_id} in {raw_root}{where}; available: {available}", hint=RAW_HINT)
    return matches[0]


# -- listing cases --------------------------------------------------------------------------------
def _inside(dataset: Path, entry: str, where: str) -> Path:
    """``entry`` (relative, from dataset.json) resolved in ``dataset``; refuse absolute paths and ``..``."""
    if any(ord(ch) < 32 for ch in entry):  # a NUL byte would crash every os call with a traceback
        raise ConfigError(
            f"{dataset / 'dataset.json'}: {where} path {entry!r} contains a control character",
            hint="paths in dataset.json must be plain paths relative to the dataset folder: ./imagesTr/case.nii.gz",
        )
    posix = PurePosixPath(entry.replace("\\", "/"))
    if posix.is_absolute() or ".." in posix.parts or re.match(r"^[A-Za-z]:", entry):
        raise ConfigError(
            f"{dataset / 'dataset.json'}: {where} path '{entry}' points outside the dataset folder",
            hint="paths in dataset.json must be relative to the dataset folder, like ./imagesTr/case.nii.gz",
        )
    return dataset.joinpath(*[p for p in posix.parts if p != "."])


def _strip_ending(name: str, file_ending: str) -> str | None:
    return name[: -len(file_ending)] if name.endswith(file_ending) and len(name) > len(file_ending) else None


def group_channel_files(folder: Path, file_ending: str) -> dict[str, dict[int, Path]]:
    """Files ``CASE_000C<ending>`` in ``folder`` grouped by case, without judging completeness.

    Hidden files (``.name``, macOS ``._name``, interrupted atomic writes) are skipped.
    """
    cases: dict[str, dict[int, Path]] = defaultdict(dict)
    if not folder.is_dir():
        return {}
    for path in sorted(folder.iterdir()):
        stem = _strip_ending(path.name, file_ending)
        if path.name.startswith(".") or stem is None or not path.is_file():
            continue
        match = CHANNEL_RE.match(stem)
        if match:
            cases[match["case"]][int(match["channel"])] = path
    return dict(sorted(cases.items()))


def case_ids_from_folder(folder: Path, file_ending: str, num_channels: int) -> list[str]:
    """Case ids of a prediction input folder; every case must have exactly channels 0..num_channels-1."""
    return list(case_files_from_folder(folder, file_ending, num_channels))


def case_files_from_folder(folder: Path, file_ending: str, num_channels: int) -> dict[str, list[Path]]:
    """Case id -> its channel files in a prediction input folder, checked complete (see :func:`files_per_case`)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"input folder {folder} does not exist", hint="pass the folder holding CASE_0000 files")
    grouped = group_channel_files(folder, file_ending)
    if not grouped:
        others = [p.name for p in folder.iterdir() if p.name.endswith(file_ending) and not p.name.startswith(".")]
        extra = f" ({len(others)} file(s) without a _0000 channel suffix, e.g. {others[0]})" if others else ""
        raise UsageError(
            f"no images named CASE_0000{file_ending} in {folder}{extra}",
            hint=f"name the files CASE_0000{file_ending}, CASE_0001{file_ending}, ... (one per channel)",
        )
    packed = packs_channels(file_ending)
    files: dict[str, list[Path]] = {}
    for case_id, channels in grouped.items():
        count = files_per_case(channels, num_channels, packed)
        for c in range(count):
            if c not in channels:
                missing = channel_file(folder, case_id, c, file_ending)
                needs = (
                    f"{num_channels} channel(s) in files numbered from _0000"
                    if packed
                    else (f"{num_channels} file(s): _0000 .. _{num_channels - 1:04d}")
                )
                raise UsageError(
                    f"case '{case_id}' in {folder} is missing channel {c}: {missing.name}",
                    hint=f"each case needs {needs}",
                )
        files[case_id] = [channels[c] for c in range(count)]
        extra_channels = sorted(c for c in channels if c >= num_channels)
        if extra_channels:
            raise UsageError(
                f"case '{case_id}' in {folder} has channel file {channels[extra_channels[0]].name} "
                f"but the model expects {num_channels} channel(s)",
                hint="remove the extra channel files or use a model trained with that many channels",
            )
    return files


def packs_channels(file_ending: str) -> bool:
    """True when the image IO for ``file_ending`` may hold several channels in one file (RGB PNG).

    Such a case has the channel files it has (``CASE_0000.png`` holding R, G and B), not one per
    channel; the channel count is then checked after reading. An IO declares it with
    ``packs_channels = True``; SimpleITK's files hold one channel each.
    """
    from segforge.errors import SegforgeError
    from segforge.io.image_io import image_io_for
    from segforge.plugins import get_manager

    try:  # the components that loaded: listing a dataset needs no failed plugin
        return bool(getattr(image_io_for(file_ending, get_manager().registries), "packs_channels", False))
    except SegforgeError:  # no reader for the ending: verify and fingerprint report that themselves
        return False


def files_per_case(present: dict[int, Path], num_channels: int, packed: bool) -> int:
    """How many channel files a case must have: one per channel, or (packed) those up to the highest present."""
    if not packed:
        return num_channels
    return max(1, min(num_channels, max(present, default=0) + 1))


def _expected_images(folder: Path, case_id: str, num_channels: int, ending: str, packed: bool = False) -> list[Path]:
    present = group_channel_files(folder, ending).get(case_id, {}) if packed else {}
    count = files_per_case(present, num_channels, packed)
    return [channel_file(folder, case_id, c, ending) for c in range(count)]


def _case_id_from_entry(path: Path, ending: str, dataset: Path) -> str:
    case_id = _strip_ending(path.name, ending)
    if case_id is None:
        raise ConfigError(
            f"{dataset / 'dataset.json'}: '{path.name}' does not end with the dataset's file ending '{ending}'",
            hint="set file_ending in dataset.json or rename the files",
        )
    return case_id


def _cases_from_training_list(path: Path, dj: DatasetJson, n: int, ending: str, packed: bool) -> list[RawCase]:
    cases = []
    for i, entry in enumerate(dj.training or []):
        image = _inside(path, entry.image, f"training[{i}].image")
        label = _inside(path, entry.label, f"training[{i}].label")
        case_id = _case_id_from_entry(image, ending, path)
        cases.append(RawCase(case_id, _expected_images(image.parent, case_id, n, ending, packed), label))
    return cases


def _cases_from_folder(folder: Path, labels: Path | None, n: int, ending: str, packed: bool) -> list[RawCase]:
    grouped = group_channel_files(folder, ending)
    return [
        RawCase(
            cid,
            [channel_file(folder, cid, c, ending) for c in range(files_per_case(present, n, packed))],
            labels / f"{cid}{ending}" if labels else None,
        )
        for cid, present in grouped.items()
    ]


def open_raw_dataset(path: str | os.PathLike[str]) -> RawDataset:
    """Read a raw dataset folder's dataset.json and list its training and test cases (sorted by id)."""
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"dataset folder {path} does not exist", hint=RAW_HINT)
    if not (path / "dataset.json").is_file():
        raise ConfigError(
            f"{path / 'dataset.json'}: file not found (is {path.name} a raw dataset folder?)", hint=RAW_HINT
        )
    dj = load_dataset_json(path / "dataset.json")
    n, ending = dj.num_channels, dj.file_ending
    packed = packs_channels(ending)
    if not dj.is_v2 and dj.training:
        cases = _cases_from_training_list(path, dj, n, ending, packed)
    else:
        cases = _cases_from_folder(path / "imagesTr", path / "labelsTr", n, ending, packed)
    if not dj.is_v2 and dj.test:
        test_cases = []
        for i, entry in enumerate(dj.test):
            image = _inside(path, entry, f"test[{i}]")
            case_id = _case_id_from_entry(image, ending, path)
            test_cases.append(RawCase(case_id, _expected_images(image.parent, case_id, n, ending, packed)))
    else:
        test_cases = _cases_from_folder(path / "imagesTs", None, n, ending, packed)
    return RawDataset(
        path=path,
        name=path.name,
        task_id=task_id_of(path.name) or 0,
        dataset_json=dj,
        num_channels=n,
        file_ending=ending,
        cases=sorted(cases, key=lambda c: c.case_id),
        test_cases=sorted(test_cases, key=lambda c: c.case_id),
    )
