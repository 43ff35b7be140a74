"""Intensity normalization schemes, one component per scheme (nnU-Net v2's, same numbers).

Plans name a scheme per channel (``ConfigurationPlan.normalization``) and say whether it
should only look at the nonzero region (``use_mask_for_norm``). Preprocessing calls
``component.normalize(image, mask, stats)`` on each channel *before* resampling, as nnU-Net
v2 does: a resampled nonzero mask would no longer fit the image exactly.

A component is any object with ``name``, ``version``, a pydantic ``Params`` model and
``normalize(image, mask, stats, params=None) -> float32 array``:

- ``image``: one channel [*spatial]; the component may overwrite it (preprocessing passes a
  private float32 copy) and returns the result.
- ``mask``: boolean [*spatial] of the voxels to normalize over, or None. Preprocessing passes
  the nonzero region (``seg >= 0`` after cropping) only where ``use_mask_for_norm`` is true.
- ``stats``: the channel's foreground :class:`~segforge.config.plans.IntensityStats` from the
  plans (dataset-wide; needed by ``ct``), or None.

Plugins add schemes through ``segforge_register_normalizations``; see
:mod:`segforge.builtins.normalizations` for how the builtin ones are registered.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from segforge.config.plans import IntensityStats
from segforge.errors import ConfigError

#: smallest standard deviation / range divided by (nnU-Net's epsilon for float32)
EPS = 1e-8


class NoParams(BaseModel):
    """The builtin schemes take no parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Normalization:
    """Base for normalization components: subclasses set ``name``/``version`` and ``normalize``."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1.0"
    Params: ClassVar[type[BaseModel]] = NoParams
    #: True if voxels outside ``mask`` come out as 0 (the model then sees 0 = outside the body)
    zero_outside_mask: ClassVar[bool] = False

    def normalize(
        self,
        image: np.ndarray,
        mask: np.ndarray | None = None,
        stats: IntensityStats | None = None,
        params: Any = None,
    ) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<normalization {self.name} {self.version}>"


class ZScoreNormalization(Normalization):
    """Per-image z-score: ``(x - mean) / std`` of this image (nnU-Net's ZScoreNormalization).

    With a mask, mean and std come from the masked voxels only and voxels outside the mask
    are set to 0. With the nonzero mask from cropping those voxels are 0 in every channel
    already, so this equals nnU-Net v2, which leaves them untouched. An empty mask gives an
    all-zero image. The default for MRI and other modalities without absolute units.
    """

    name = "zscore"
    zero_outside_mask = True

    def normalize(self, image, mask=None, stats=None, params=None):  # noqa: ANN001, ANN201
        image = image.astype(np.float32, copy=False)
        if mask is None:
            mean, std = image.mean(), image.std()
            image -= mean
            image /= max(std, EPS)
            return image
        values = image[mask]
        if values.size == 0:
            image[...] = 0
            return image
        mean, std = values.mean(), values.std()
        image -= mean
        image /= max(std, EPS)
        image[~mask] = 0
        return image


class CTNormalization(Normalization):
    """CT: clip to the foreground 0.5/99.5 percentiles, z-score with the dataset's foreground stats.

    nnU-Net's CTNormalization. Hounsfield units are absolute, so every image gets the same
    transform from the plans' intensity statistics (which it needs); the mask is ignored.
    """

    name = "ct"

    def normalize(self, image, mask=None, stats=None, params=None):  # noqa: ANN001, ANN201
        if stats is None:
            raise ConfigError(
                "normalization 'ct' needs the channel's foreground intensity statistics, but the plans have none",
                hint="re-run `segforge plan` so foreground_intensity_properties_per_channel is filled in",
            )
        image = image.astype(np.float32, copy=False)
        np.clip(image, stats.percentile_00_5, stats.percentile_99_5, out=image)
        image -= stats.mean
        image /= max(stats.std, EPS)
        return image


class NoNormalization(Normalization):
    """No normalization: the image as float32, unchanged (nnU-Net's NoNormalization)."""

    name = "none"

    def normalize(self, image, mask=None, stats=None, params=None):  # noqa: ANN001, ANN201
        return image.astype(np.float32, copy=False)


class RescaleTo01Normalization(Normalization):
    """Min-max rescaling of each image to [0, 1] (nnU-Net's RescaleTo01Normalization); ignores the mask."""

    name = "rescale_0_1"

    def normalize(self, image, mask=None, stats=None, params=None):  # noqa: ANN001, ANN201
        image = image.astype(np.float32, copy=False)
        image -= image.min()
        image /= max(image.max(), EPS)
        return image


#: the schemes segforge ships; registered by segforge.builtins.normalizations
BUILTIN_NORMALIZATIONS: tuple[Normalization, ...] = (
    ZScoreNormalization(),
    CTNormalization(),
    NoNormalization(),
    RescaleTo01Normalization(),
)

#: nnU-Net v2 class names in plans written by nnU-Net, mapped to segforge's scheme names
NNUNET_SCHEME_NAMES: dict[str, str] = {
    "ZScoreNormalization": "zscore",
    "CTNormalization": "ct",
    "NoNormalization": "none",
    "RescaleTo01Normalization": "rescale_0_1",
}
