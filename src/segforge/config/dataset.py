"""The ``dataset.json`` of a raw dataset, read in either nnU-Net format.

nnU-Net v1 / MSD (``modality`` {"0": "MRI"}, ``labels`` {"0": "background", ...}, a
``training`` list) and nnU-Net v2 (``channel_names``, ``labels`` {"background": 0, ...} whose
values may be lists for regions, ``file_ending``) are both accepted, so users can point
segforge at data they already have. The rest of segforge only uses the normalized view:
:meth:`DatasetJson.channel_names`, :meth:`DatasetJson.label_values`, ``file_ending`` ...
Validation failures become one-line errors through :func:`segforge.config.jsonio.load_model`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Union

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator, model_validator

from segforge.atomic import atomic_write_json
from segforge.config.jsonio import load_model
from segforge.errors import ConfigError

DEFAULT_FILE_ENDING = ".nii.gz"
IGNORE_LABEL_NAME = "ignore"
DATASET_JSON_HINT = (
    'fix dataset.json (nnU-Net v1: modality, labels {"0": "background", ...}, numTraining, training; '
    'v2: channel_names, labels {"background": 0, ...}, numTraining, file_ending)'
)

LabelValue = Union[StrictInt, list[StrictInt], StrictStr]


class TrainingEntry(BaseModel):
    """One v1 ``training`` entry: paths relative to the dataset folder."""

    model_config = ConfigDict(extra="forbid")

    image: StrictStr
    label: StrictStr


def _int_key(key: str, what: str) -> int:
    if not key.strip().isdigit():
        raise ValueError(f"{what} key '{key}' is not a non-negative integer")
    return int(key)


def _check_channels(value: dict[str, str] | None, key: str) -> dict[str, str] | None:
    if value is None:
        return None
    if not value:
        raise ValueError(f'{key} is empty: name at least one input channel, e.g. {{"0": "CT"}}')
    indices = sorted(_int_key(k, key) for k in value)
    if indices != list(range(len(indices))):
        raise ValueError(f"{key} keys must be 0..{len(indices) - 1}, got {indices}")
    return value


class DatasetJson(BaseModel):
    """A raw dataset's ``dataset.json`` (nnU-Net v1/MSD or v2), with a normalized view."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    name: StrictStr | None = None
    description: StrictStr | None = None
    tensorImageSize: StrictStr | None = None
    modality: dict[str, StrictStr] | None = None
    channel_names_raw: dict[str, StrictStr] | None = Field(default=None, alias="channel_names")
    labels: dict[str, LabelValue]
    numTraining: StrictInt = Field(ge=0)
    numTest: StrictInt | None = None
    training: list[TrainingEntry] | None = None
    test: list[StrictStr] | None = None
    file_ending_raw: StrictStr | None = Field(default=None, alias="file_ending")
    regions_class_order: list[StrictInt] | None = None
    overwrite_image_reader_writer: StrictStr | None = None

    # -- validation ---------------------------------------------------------------------------
    @field_validator("modality")
    @classmethod
    def _modality(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return _check_channels(value, "modality")

    @field_validator("channel_names_raw")
    @classmethod
    def _channel_names(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return _check_channels(value, "channel_names")

    @field_validator("file_ending_raw")
    @classmethod
    def _file_ending(cls, value: str | None) -> str | None:
        if value is not None and (not value.startswith(".") or len(value) < 2):
            raise ValueError(f"file_ending must start with '.', e.g. \".nii.gz\", got '{value}'")
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            raise ValueError('labels is empty: at least {"0": "background"} is required')
        kinds = {isinstance(v, str) for v in value.values()}
        if len(kinds) > 1:
            raise ValueError('labels mixes v1 style ("0": "name") and v2 style ("name": 0) entries')
        if kinds == {True}:  # v1: value -> name
            by_value = {_int_key(k, "labels"): v for k, v in value.items()}
            names = list(by_value.values())
        else:  # v2: name -> value or region list
            by_value = {}
            names = list(value)
            for k, v in value.items():
                if isinstance(v, int):
                    if v in by_value:
                        raise ValueError(f"labels '{by_value[v]}' and '{k}' have the same value {v}")
                    by_value[v] = k
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"label name '{dupes[0]}' is used for more than one value")
        _check_label_values(by_value, value)
        return value

    @model_validator(mode="after")
    def _channels_present(self) -> DatasetJson:
        if self.modality is None and self.channel_names_raw is None:
            raise ValueError("missing 'channel_names' (nnU-Net v2) or 'modality' (nnU-Net v1/MSD)")
        both = self.modality is not None and self.channel_names_raw is not None
        if both and self.modality != self.channel_names_raw:
            raise ValueError("'modality' and 'channel_names' disagree; keep only one of them")
        return self

    # -- normalized view ------------------------------------------------------------------------
    @property
    def is_v2(self) -> bool:
        """True for nnU-Net v2 files (``channel_names``), False for v1/MSD (``modality``)."""
        return self.channel_names_raw is not None

    @property
    def labels_v1_style(self) -> bool:
        return all(isinstance(v, str) for v in self.labels.values())

    def channel_names(self) -> dict[int, str]:
        """Channel index -> name, from ``channel_names`` (v2) or ``modality`` (v1)."""
        raw = self.channel_names_raw if self.channel_names_raw is not None else self.modality or {}
        return {int(k): v for k, v in sorted(raw.items(), key=lambda kv: int(kv[0]))}

    @property
    def num_channels(self) -> int:
        return len(self.channel_names())

    def label_values(self) -> dict[str, int]:
        """Label name -> integer value, background (0) included, in value order; regions left out."""
        if self.labels_v1_style:
            pairs = [(name, int(k)) for k, name in self.labels.items()]
        else:
            pairs = [(name, v) for name, v in self.labels.items() if isinstance(v, int)]
        return dict(sorted(pairs, key=lambda p: p[1]))

    def regions(self) -> dict[str, tuple[int, ...]]:
        """v2 region labels (name -> the label values it unites); empty for ordinary datasets."""
        return {k: tuple(v) for k, v in self.labels.items() if isinstance(v, list)}

    @property
    def has_regions(self) -> bool:
        return bool(self.regions())

    def allowed_label_values(self) -> set[int]:
        """Every integer a segmentation file of this dataset may contain."""
        values = set(self.label_values().values())
        for members in self.regions().values():
            values.update(members)
        return values

    @property
    def ignore_label(self) -> int | None:
        """The value of the label named ``ignore`` (nnU-Net v2's unannotated-voxel marker), if any."""
        return self.label_values().get(IGNORE_LABEL_NAME)

    @property
    def file_ending(self) -> str:
        return self.file_ending_raw or DEFAULT_FILE_ENDING

    @property
    def num_training(self) -> int:
        return self.numTraining

    # -- writing --------------------------------------------------------------------------------
    def to_v1_dict(self) -> dict[str, Any]:
        """The nnU-Net v1 form written into Task folders (extra keys such as ``reference`` kept)."""
        if self.has_regions:
            raise ConfigError(
                f"dataset '{self.name}' uses region labels, which nnU-Net v1's dataset.json cannot express",
                hint="keep the v2 dataset.json for region-based datasets",
            )
        out: dict[str, Any] = {"name": self.name, "description": self.description}
        out.update({k: v for k, v in (self.model_extra or {}).items()})
        out["tensorImageSize"] = self.tensorImageSize or "3D"
        out["modality"] = {str(i): n for i, n in self.channel_names().items()}
        out["labels"] = {str(v): n for n, v in self.label_values().items()}
        out["numTraining"] = self.numTraining
        out["numTest"] = len(self.test) if self.test is not None else (self.numTest or 0)
        out["training"] = [e.model_dump() for e in self.training or []]
        out["test"] = list(self.test or [])
        if self.file_ending != DEFAULT_FILE_ENDING:
            out["file_ending"] = self.file_ending
        return {k: v for k, v in out.items() if v is not None}

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically in v1 style (for segforge's Task folders)."""
        atomic_write_json(path, self.to_v1_dict())


def _check_label_values(by_value: dict[int, str], raw: dict[str, Any]) -> None:
    """Background must be 0 and the label values 0..N without gaps, as nnU-Net requires."""
    values = set(by_value)
    for v in raw.values():
        if isinstance(v, list):
            if not v:
                raise ValueError("a region label lists no values")
            values.update(v)
    if any(v < 0 for v in values):
        raise ValueError(f"label values must not be negative, got {min(values)}")
    background = [v for v, n in by_value.items() if n == "background"]
    if background and background[0] != 0:
        raise ValueError(f"label 'background' must have value 0, got {background[0]}")
    if 0 not in by_value:
        raise ValueError("labels must include background with value 0")
    ignore = [v for v, n in by_value.items() if n == IGNORE_LABEL_NAME]
    if ignore and ignore[0] != max(values):
        raise ValueError(f"label 'ignore' must have the highest value ({max(values)}), got {ignore[0]}")
    expected = list(range(max(values) + 1))
    if sorted(values) != expected:
        missing = sorted(set(expected) - values)
        raise ValueError(f"label values must be consecutive 0..{max(values)}; missing {missing}")


def load_dataset_json(path: str | os.PathLike[str]) -> DatasetJson:
    """Read and validate a dataset.json; every problem is a one-line ConfigError naming the file."""
    path = Path(path)
    if path.is_dir():
        path = path / "dataset.json"
    return load_model(path, DatasetJson, hint=DATASET_JSON_HINT)
