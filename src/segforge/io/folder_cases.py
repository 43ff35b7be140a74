"""Prediction inputs given as one sub-folder per case (each a DICOM series), instead of CASE_0000 files.

A scanner exports a series as a folder of slice files; asking users to convert every series
first is the step nnU-Net users script per dataset. When an input folder holds no CASE_0000
files but sub-folders that an installed image-IO component reads as one image (its
``claims_directory``, see :func:`segforge.io.image_io.directory_image_io_for`), each sub-folder is
one single-channel case named after the folder, and its segmentation is written as
``OUT/<sub-folder>.nii.gz`` on the series' grid (NIfTI unless the component names another
ending in ``output_ending``). A folder in a known folder format that nothing installed reads
(DICOM without ``segforge-dicom``) is a one-line error naming the plugin to install.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segforge.errors import UsageError
from segforge.io.image_io import directory_image_io_for, unreadable_folder_error

#: what a case read from a folder is written as, unless its image IO says otherwise
DEFAULT_FOLDER_OUTPUT_ENDING = ".nii.gz"


@dataclass(frozen=True)
class FolderCase:
    """One case that is a folder: its id (the folder name), the folder and the component that reads it."""

    case_id: str
    folder: Path
    reader: Any

    @property
    def output_ending(self) -> str:
        return str(getattr(self.reader, "output_ending", DEFAULT_FOLDER_OUTPUT_ENDING))


def _has_case_files(folder: Path, endings: tuple[str, ...]) -> bool:
    return any(p.name.endswith(f"_0000{e}") for p in folder.iterdir() for e in endings)


def folder_cases(input_folder: Path, endings: tuple[str, ...], num_channels: int,
                 registries: Any = None) -> list[FolderCase] | None:  # fmt: skip
    """The cases of ``input_folder`` when they are sub-folders read as images; None when it holds CASE_0000 files.

    None also when no sub-folder is in a folder format, so the usual "no CASE_0000 files" error
    stays the answer for a wrong folder (a raw dataset root, say). Every sub-folder is checked
    before any case is predicted.
    """
    input_folder = Path(input_folder)
    if not input_folder.is_dir() or _has_case_files(input_folder, tuple(endings)):
        return None
    subfolders = sorted(p for p in input_folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subfolders:
        if directory_image_io_for(input_folder, registries) is not None or unreadable_folder_error(input_folder):
            raise UsageError(
                f"{input_folder} is itself one series, not a folder of cases",
                hint=f"put each series in its own sub-folder (e.g. {input_folder}/case_001/) and pass the parent",
            )
        return None
    found: list[FolderCase] = []
    unknown: list[Path] = []
    for sub in subfolders:
        reader = directory_image_io_for(sub, registries)
        if reader is not None:
            found.append(FolderCase(sub.name, sub, reader))
            continue
        error = unreadable_folder_error(sub)
        if error is not None:
            raise error
        unknown.append(sub)
    if not found:
        return None
    if unknown:
        raise UsageError(
            f"{unknown[0]} is not a series folder, but {found[0].folder.name} next to it is",
            hint="keep only one series folder per case in the input folder (move the others out)",
        )
    if num_channels != 1:
        raise UsageError(
            f"the model expects {num_channels} input channels; a series folder ({found[0].folder}) is one channel",
            hint="predict series folders with a single-channel model, or convert the channels to CASE_000X files",
        )
    return found
