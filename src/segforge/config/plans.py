"""plans.json: what the planner decided, per configuration, as validated plain data.

The shape follows nnU-Net v2's plans (so its users can read them) with two differences:
components are named by registry name and version (never by dotted import path), and the
file records who made it (planner, segforge and plugin versions, fingerprint digest).

Axis conventions: every spatial list in a configuration (``spacing``, ``patch_size``,
``median_image_size_in_voxels``) is in the *transposed* order, i.e. after applying
``transpose_forward`` to the array axes of the raw images (SimpleITK array order z, y, x).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PLANS_FORMAT_VERSION = 1
CONFIGURATION_NAMES = ("2d", "3d_fullres", "3d_lowres", "3d_cascade_fullres")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IntensityStats(_Strict):
    """Foreground intensity statistics of one channel (used by the ``ct`` normalization)."""

    mean: float
    median: float
    std: float
    min: float
    max: float
    percentile_00_5: float
    percentile_99_5: float


class ResamplingSpec(_Strict):
    """How preprocessing resamples to the target spacing and export resamples back.

    Orders are spline orders (0 nearest, 1 linear, 3 cubic). With ``separate_z`` the
    low-resolution axis is resampled separately with ``order_z_*`` (nnU-Net's rule for
    anisotropic data); ``None`` decides per case from ``anisotropy_threshold``.
    """

    order_data: int = Field(3, ge=0, le=5)
    order_seg: int = Field(1, ge=0, le=5)
    order_z_data: int = Field(0, ge=0, le=5)
    order_z_seg: int = Field(0, ge=0, le=5)
    force_separate_z: bool | None = None
    anisotropy_threshold: float = Field(3.0, gt=1.0)


class NetworkSpec(_Strict):
    """A network by registry name and version, its params, and the plugin that provided it."""

    name: str
    version: str
    params: dict[str, Any]
    plugin: str | None = None
    dist: str | None = None
    dist_version: str | None = None


class ConfigurationPlan(_Strict):
    """Everything preprocessing and training need for one configuration (e.g. ``3d_fullres``)."""

    name: str
    data_identifier: str
    spacing: list[float]
    patch_size: list[int]
    batch_size: int = Field(ge=1)
    median_image_size_in_voxels: list[float]
    normalization: list[str] = Field(min_length=1)
    use_mask_for_norm: list[bool] = Field(min_length=1)
    resampling: ResamplingSpec = Field(default_factory=ResamplingSpec)
    network: NetworkSpec
    batch_dice: bool = True
    memory_estimate_bytes: int | None = None
    previous_stage: str | None = None
    next_stage: str | None = None

    @field_validator("spacing")
    @classmethod
    def _positive_spacing(cls, v: list[float]) -> list[float]:
        if any(s <= 0 for s in v):
            raise ValueError("every spacing must be > 0")
        return v

    @field_validator("patch_size")
    @classmethod
    def _positive_patch(cls, v: list[int]) -> list[int]:
        if any(p < 1 for p in v):
            raise ValueError("every patch edge must be >= 1")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ConfigurationPlan:
        if len(self.patch_size) not in (2, 3):
            raise ValueError(f"patch_size must have 2 or 3 axes, got {len(self.patch_size)}")
        if len(self.normalization) != len(self.use_mask_for_norm):
            raise ValueError("normalization and use_mask_for_norm need one entry per channel")
        return self

    @property
    def dims(self) -> int:
        return len(self.patch_size)


class Plans(_Strict):
    """The whole plans.json of one dataset and plans name."""

    format_version: Literal[1] = PLANS_FORMAT_VERSION
    dataset_name: str
    plans_name: str
    planner: str
    planner_version: str
    #: the planner's Params as used, so plans can be re-derived for another network with the same settings
    planner_params: dict[str, Any] = Field(default_factory=dict)
    segforge_version: str
    plugins: dict[str, str] = Field(default_factory=dict, description="distribution -> version")
    fingerprint_digest: str
    image_io: str = "simpleitk"
    transpose_forward: list[int]
    transpose_backward: list[int]
    original_median_spacing_after_transp: list[float]
    original_median_shape_after_transp: list[float]
    labels: dict[str, int]
    #: region-based training (dataset.json labels given as lists): the label set of each sigmoid output
    regions: list[list[int]] | None = None
    #: the label exported for each region, later regions overwriting earlier ones (nnU-Net's rule)
    regions_class_order: list[int] | None = None
    foreground_intensity_properties_per_channel: dict[str, IntensityStats]
    configurations: dict[str, ConfigurationPlan]

    @model_validator(mode="after")
    def _check(self) -> Plans:
        n = len(self.transpose_forward)
        if sorted(self.transpose_forward) != list(range(n)):
            raise ValueError(f"transpose_forward {self.transpose_forward} is not a permutation of 0..{n - 1}")
        back = [self.transpose_forward.index(i) for i in range(n)]
        if self.transpose_backward != back:
            raise ValueError(f"transpose_backward must be {back} (the inverse of transpose_forward)")
        for key, conf in self.configurations.items():
            if key != conf.name:
                raise ValueError(f"configurations.{key} has name '{conf.name}'")
            for ref in (conf.previous_stage, conf.next_stage):
                if ref is not None and ref not in self.configurations:
                    raise ValueError(f"configurations.{key} refers to missing configuration '{ref}'")
        if (self.regions is None) != (self.regions_class_order is None) or (
            self.regions is not None and len(self.regions) != len(self.regions_class_order or [])
        ):
            raise ValueError("regions and regions_class_order must be given together, one order entry per region")
        return self

    def configuration(self, name: str) -> ConfigurationPlan:
        from segforge.errors import ConfigError

        try:
            return self.configurations[name]
        except KeyError:
            raise ConfigError(
                f"plans '{self.plans_name}' have no configuration '{name}' "
                f"(available: {', '.join(self.configurations) or 'none'})",
                hint=self._missing_configuration_hint(name),
            ) from None

    def _missing_configuration_hint(self, name: str) -> str:
        """Re-planning helps only if the network can do it: a 3D-only network never gets a 2d plan."""
        networks = sorted({c.network.name for c in self.configurations.values()})
        dims = "2D" if name == "2d" else "3D"
        return (
            f"re-run `segforge plan-and-preprocess` with --configs including {name}; if it stays missing, "
            f"{' / '.join(networks) or 'the network'} has no {dims} version or the data does not need it "
            f"(the planner's reason is logged) - train one of: {', '.join(self.configurations) or 'none'}"
        )
