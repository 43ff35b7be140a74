"""Predicting with a cascade stage (3d_cascade_fullres): the lowres segmentation as extra input channels.

``segforge predict --config 3d_cascade_fullres`` needs, for every case, the 3d_lowres
segmentation in the raw image's geometry (what ``segforge predict --config 3d_lowres`` writes).
Either the user passes that folder (``--lowres-predictions DIR``, nnU-Net v2's
``-prev_stage_predictions``) or the command first predicts it with the matching 3d_lowres
model into ``<output>/3d_lowres_predictions/`` (nnU-Net v1's automatic chain).

Each case is then preprocessed like training data with a label: the lowres segmentation goes
through the same transpose, crop and resampling (as a segmentation) as the image, so it lands
voxel for voxel on the cascade's preprocessed grid; its one-hot encoding (one channel per
foreground label) is appended to the image channels, exactly as the cascade was trained.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from segforge.data.next_stage import cascade_values, one_hot, previous_stage_channels
from segforge.errors import ConfigError, UsageError
from segforge.inference.predictor import CaseJob, CasePipeline

if TYPE_CHECKING:  # pragma: no cover
    from segforge.inference.model_loading import LoadedModel
    from segforge.preprocessing.preprocessor import PreprocessedCase

#: where ``segforge predict`` writes the first stage's segmentations when it runs it itself
LOWRES_SUBFOLDER = "3d_lowres_predictions"


def is_cascade(model: LoadedModel) -> bool:
    """True for a model whose configuration takes a previous stage's segmentation."""
    return model.configuration.previous_stage is not None


def image_channels(model: LoadedModel) -> int:
    """Image files per case the model needs (its input channels minus the one-hot previous-stage ones)."""
    return model.in_channels - previous_stage_channels(model.plans, model.configuration)


def lowres_model_dir(model_dir: Path, configuration: str, previous_stage: str) -> Path:
    """The previous stage's run (or fold) folder beside ``model_dir``: ``.../<dataset>/<previous>/<run>[/fold]``."""
    parts = list(Path(model_dir).parts)
    if configuration not in parts:
        raise UsageError(
            f"cannot find the {previous_stage} model for {model_dir} (no '{configuration}' folder in its path)",
            hint=f"pass the {previous_stage} segmentations with --lowres-predictions DIR",
        )
    index = len(parts) - 1 - parts[::-1].index(configuration)
    found = Path(*parts[:index], previous_stage, *parts[index + 1 :])
    if not found.is_dir():
        raise UsageError(
            f"no {previous_stage} model at {found}: {configuration} predicts from its segmentations",
            hint=f"train {previous_stage} with the same trainer/network/plans, or pass --lowres-predictions DIR",
        )
    return found


def lowres_folds(lowres_dir: Path, folds: list[str] | None) -> list[str] | None:
    """The cascade's ``--folds`` for the first stage when it has them all, else every trained one (None).

    A cascade trained on folds 0-4 is usually fed by the five lowres folds; a lowres model trained
    only on fold ``all`` still serves a cascade fold.
    """
    if not folds or all((Path(lowres_dir) / f"fold_{f}").is_dir() for f in folds):
        return folds
    return None


class CascadePipeline(CasePipeline):
    """:class:`CasePipeline` whose input adds the one-hot of each case's lowres segmentation file."""

    def __init__(self, networks: Any, model: LoadedModel, settings: Any, device: Any, *, lowres_folder: Path,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(networks, model, settings, device, **kwargs)
        self.lowres_folder = Path(lowres_folder)
        self.values = cascade_values(model.plans)

    def lowres_file(self, job: CaseJob) -> Path:
        path = self.lowres_folder / job.output.name
        if not path.is_file():
            raise ConfigError(
                f"{path}: no {self.conf.previous_stage} segmentation for case '{job.case_id}'",
                hint=f"predict it with `segforge predict --config {self.conf.previous_stage} -o {self.lowres_folder}`"
                " first, or leave out --lowres-predictions to run that stage automatically",
            )
        return path

    def preprocess(self, job: CaseJob) -> PreprocessedCase:
        ident = self.preprocessor.data_identifiers[0]
        case = self.preprocessor.run_files(list(job.images), self.lowres_file(job), job.case_id, [ident])[ident]
        previous = np.maximum(case.seg[0], 0)  # -1 marks voxels outside the nonzero region: background
        case.data = np.concatenate([case.data, one_hot(previous, self.values)])
        case.seg, case.class_locations = None, {}
        return case
