"""The ``default`` planner: nnU-Net v2's ExperimentPlanner decisions, with the network as a plugin.

A planner component has ``name``, ``version``, a pydantic ``Params`` model and two methods:

- ``plan(fingerprint, *, network, plans_name, params=None, registries=None) -> Plans``
- ``rederive(plans, fingerprint, *, network, plans_name, registries=None) -> Plans``: the
  network-dependent parts (topology, patch, batch) for another network, keeping spacing,
  transposition, normalization and data identifiers so preprocessed data is reused.

What the default planner decides, as nnU-Net v2 (2.8.1) does:

- geometry (:mod:`segforge.planning.spacing`): median target spacing with the anisotropy
  rule, the coarsest axis first;
- ``3d_fullres`` at that spacing; ``3d_lowres`` when the fullres patch covers less than 25%
  of the median image: the spacing grows in steps of 1.03 (anisotropic axes first) until the
  patch covers 25%, and the config is dropped again when it would shrink the median image by
  less than 2x; then ``3d_cascade_fullres`` is ``3d_fullres`` fed by ``3d_lowres``;
- ``2d`` on the two finest axes;
- patch, topology and batch per configuration from the network builder
  (:mod:`segforge.planning.network_fit`) within ``gpu_memory_gb``;
- per channel, ``ct`` for channels named CT, otherwise ``zscore`` (``nonorm`` ->
  ``none``, ``rescale_to_0_1`` -> ``rescale_0_1``, or any registered normalization's name);
  the nonzero mask is used when cropping shrank the median case below 3/4 of its size and
  the scheme leaves voxels outside the mask at 0;
- ``batch_dice``: True for 2d; for 3d_fullres only when a 3d_lowres exists; False for
  3d_lowres (what nnU-Net v2.8.1's planner writes).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from segforge._version import __version__
from segforge.config.fingerprint import Fingerprint
from segforge.config.plans import ConfigurationPlan, NetworkSpec, Plans, ResamplingSpec
from segforge.errors import ConfigError
from segforge.planning.experiment import select_configurations
from segforge.planning.network_fit import GIB, FitRequest, NetworkFit, fit_network
from segforge.planning.spacing import median_shape_at_spacing, target_spacing, transpose_axes

#: dataset.json channel name (case-folded) -> normalization component (nnU-Net's mapping)
CHANNEL_SCHEMES = {"ct": "ct", "nonorm": "none", "zscore": "zscore", "rescale_to_0_1": "rescale_0_1"}
DEFAULT_SCHEME = "zscore"
MAX_LOWRES_STEPS = 1000


class PlanningWarning(UserWarning):
    """Something the user should know about a plan (e.g. the network does not fit the memory budget)."""


class DefaultPlannerParams(BaseModel):
    """Settings of the ``default`` planner (nnU-Net v2's constants as defaults)."""

    model_config = ConfigDict(extra="forbid")

    gpu_memory_gb: float = Field(8.0, gt=0, description="memory budget of one training step, GiB")
    min_batch_size: int = Field(2, ge=1, description="smallest batch; the patch shrinks until it fits")
    max_dataset_fraction: float = Field(0.05, gt=0, le=1, description="one batch covers at most this much data")
    anisotropy_threshold: float = Field(3.0, gt=1, description="spacing ratio that makes an axis low-resolution")
    lowres_threshold: float = Field(0.25, ge=0, le=1, description="plan 3d_lowres below this patch/image ratio")
    lowres_spacing_step: float = Field(1.03, gt=1, description="factor per step of the 3d_lowres spacing search")
    lowres_min_shrink: float = Field(2.0, ge=1, description="drop 3d_lowres unless it shrinks images this much")
    mask_size_threshold: float = Field(0.75, gt=0, le=1, description="use the nonzero mask below this crop ratio")
    suppress_transpose: bool = Field(False, description="keep the raw axis order")
    target_spacing: list[float] | None = Field(None, description="override the 3d_fullres spacing (array order)")
    network_params: dict[str, Any] = Field(
        default_factory=dict,
        description="network params fixed in every configuration (e.g. {'embed_dim': 24}); they replace what the "
        "builder proposes, and patch and batch are searched with them (`--network-param KEY=VALUE`)",
    )


@dataclass(frozen=True)
class Geometry:
    """The network-independent decisions, in transposed order."""

    fullres_spacing: np.ndarray
    transpose_forward: list[int]
    transpose_backward: list[int]
    median_shape: np.ndarray
    dataset_voxels: float

    @property
    def is_3d(self) -> bool:
        return self.median_shape[0] != 1


def geometry(fingerprint: Fingerprint, params: DefaultPlannerParams) -> Geometry:
    """Target spacing, transposition and the median shape at the target spacing."""
    spacings, shapes = fingerprint.spacings, fingerprint.shapes_after_crop
    if params.target_spacing is not None:
        if len(params.target_spacing) != len(spacings[0]):
            raise ConfigError(
                f"planner params: target_spacing {params.target_spacing} needs {len(spacings[0])} values",
                hint="give one spacing per image axis in array order (z, y, x)",
            )
        spacing = np.asarray(params.target_spacing, dtype=np.float64)
    else:
        spacing = target_spacing(spacings, shapes, params.anisotropy_threshold)
    forward, backward = transpose_axes(spacing, params.suppress_transpose)
    median = median_shape_at_spacing(spacings, shapes, spacing)[forward]
    voxels = float(np.prod(median, dtype=np.float64) * fingerprint.num_cases)
    return Geometry(spacing[forward], forward, backward, median, voxels)


class DefaultPlanner:
    """nnU-Net v2's experiment planner; patch, topology and batch size come from the network builder."""

    name: ClassVar[str] = "default"
    version: ClassVar[str] = "1.0"
    Params: ClassVar[type[DefaultPlannerParams]] = DefaultPlannerParams

    def parse_params(self, params: DefaultPlannerParams | dict[str, Any] | None) -> DefaultPlannerParams:
        if isinstance(params, DefaultPlannerParams):
            return params
        from segforge.registry import parse_component_params

        return parse_component_params("planner", self.name, DefaultPlannerParams, params or {})

    # -- planning -------------------------------------------------------------------------
    def plan(
        self,
        fingerprint: Fingerprint,
        *,
        network: str = "generic_unet",
        plans_name: str = "segforgePlans",
        params: DefaultPlannerParams | dict[str, Any] | None = None,
        registries: Any = None,
    ) -> Plans:
        """Plans for every configuration this dataset gets (2d always; 3d ones for 3D data)."""
        p = self.parse_params(params)
        ctx = _Context.create(self, fingerprint, network, p, registries)
        geo = geometry(fingerprint, p)
        configs: dict[str, ConfigurationPlan] = {}
        if geo.is_3d and ctx.supports(3, "no 3d configurations"):
            fullres = ctx.configuration(
                "3d_fullres", plans_name, geo.fullres_spacing, geo.median_shape, geo.dataset_voxels
            )
            lowres = self._lowres(ctx, plans_name, fullres, geo)
            if lowres is not None:
                configs["3d_lowres"] = lowres.model_copy(
                    update={"batch_dice": False, "next_stage": "3d_cascade_fullres"}
                )
                cascade = fullres.model_copy(update={"name": "3d_cascade_fullres", "previous_stage": "3d_lowres"})
                configs["3d_cascade_fullres"] = cascade.model_copy(update={"batch_dice": True})
            configs["3d_fullres"] = fullres.model_copy(update={"batch_dice": lowres is not None})
        if ctx.supports(2, "no 2d configuration"):
            configs["2d"] = ctx.configuration(
                "2d", plans_name, geo.fullres_spacing[1:], geo.median_shape[1:], geo.dataset_voxels
            )
        if not configs:
            raise ConfigError(
                f"network '{network}' builds no network of the dimensions {fingerprint.dataset_name} needs",
                hint="choose another --network (`segforge components list --kind network`)",
            )
        configs = {k: configs[k] for k in ("2d", "3d_fullres", "3d_lowres", "3d_cascade_fullres") if k in configs}
        return ctx.plans(plans_name, geo, configs)

    def _lowres(
        self, ctx: _Context, plans_name: str, fullres: ConfigurationPlan, geo: Geometry
    ) -> ConfigurationPlan | None:
        """nnU-Net v2's 3d_lowres search (see the module docstring); None when not needed."""
        p = ctx.params
        full_spacing = np.asarray(fullres.spacing, dtype=np.float64)
        spacing = full_spacing.copy()
        median_voxels = float(np.prod(geo.median_shape, dtype=np.float64))
        patch_voxels = float(math.prod(fullres.patch_size))
        lowres = None
        steps = 0
        while patch_voxels / median_voxels < p.lowres_threshold and steps < MAX_LOWRES_STEPS:
            steps += 1
            coarse = spacing.max() / spacing > 2
            if coarse.any():
                spacing[coarse] *= p.lowres_spacing_step
            else:
                spacing *= p.lowres_spacing_step
            scaled = full_spacing / spacing * geo.median_shape
            median_voxels = float(np.prod(scaled, dtype=np.float64))
            shape = np.asarray([round(float(s)) for s in scaled], dtype=np.float64)
            voxels = median_voxels * ctx.fingerprint.num_cases
            lowres = ctx.configuration("3d_lowres", plans_name, spacing.copy(), shape, voxels)
            patch_voxels = float(math.prod(lowres.patch_size))
        if np.prod(geo.median_shape, dtype=np.float64) / median_voxels < p.lowres_min_shrink:
            return None
        return lowres

    # -- re-deriving for another network --------------------------------------------------
    def rederive(
        self,
        plans: Plans,
        fingerprint: Fingerprint,
        *,
        network: str,
        plans_name: str | None = None,
        registries: Any = None,
    ) -> Plans:
        """``plans`` with topology, patch and batch re-planned for ``network``; geometry and data kept."""
        if plans.fingerprint_digest != fingerprint.digest():
            raise ConfigError(
                f"plans '{plans.plans_name}' were made from another fingerprint of {plans.dataset_name}",
                hint="the raw data changed since planning: re-run `segforge plan --overwrite-plans`",
            )
        p = self.parse_params(plans.planner_params)
        ctx = _Context.create(self, fingerprint, network, p, registries)
        geo = geometry(fingerprint, p)
        configs = {}
        for key, conf in plans.configurations.items():
            if not ctx.supports(conf.dims, f"no {key} configuration"):
                continue
            voxels = geo.dataset_voxels
            if key == "3d_lowres":
                voxels = float(np.prod(conf.median_image_size_in_voxels, dtype=np.float64)) * fingerprint.num_cases
            fit = ctx.fit(conf.spacing, conf.median_image_size_in_voxels, voxels, conf.name)
            configs[key] = conf.model_copy(update=ctx.fit_fields(fit))
        if not configs:
            raise ConfigError(
                f"network '{network}' builds none of the configurations of plans '{plans.plans_name}'",
                hint="choose another --network (`segforge components list --kind network`)",
            )
        rederived = plans.model_copy(
            update={
                "plans_name": plans_name or plans.plans_name,
                "configurations": configs,
                "plugins": ctx.plugin_versions(),
                "segforge_version": __version__,
            }
        )
        return select_configurations(rederived, configs)


@dataclass
class _Context:
    """What one planning run shares: the planner, fingerprint, network entry, params, caches."""

    planner: DefaultPlanner
    fingerprint: Fingerprint
    network_entry: Any
    params: DefaultPlannerParams
    registries: Any
    normalization: list[str]
    cache: dict

    @classmethod
    def create(
        cls,
        planner: DefaultPlanner,
        fingerprint: Fingerprint,
        network: str,
        params: DefaultPlannerParams,
        registries: Any,
    ) -> _Context:
        if registries is None:
            from segforge.plugins import get_registries

            registries = get_registries()
        entry = registries.network.entry(network)
        schemes = [normalization_for_channel(name, registries) for name in fingerprint.channel_names.values()]
        return cls(planner, fingerprint, entry, params, registries, schemes, {})

    @property
    def builder(self) -> Any:
        return self.network_entry.component

    def supports(self, dims: int, consequence: str) -> bool:
        """Whether the network is built in ``dims`` D; if not, warn with the ``consequence``."""
        if dims in getattr(self.builder, "dims", (2, 3)):
            return True
        warnings.warn(f"network '{self.builder.name}' has no {dims}D version: {consequence}", PlanningWarning, 3)
        return False

    def fit(self, spacing: Any, median: Any, voxels: float, name: str) -> NetworkFit:
        request = FitRequest(
            spacing=tuple(float(s) for s in spacing),
            median_shape=tuple(float(m) for m in median),
            in_channels=self.fingerprint.num_channels,
            num_classes=len(self.fingerprint.labels),
            budget_bytes=self.params.gpu_memory_gb * GIB,
            dataset_voxels=voxels,
            min_batch_size=self.params.min_batch_size,
            max_dataset_fraction=self.params.max_dataset_fraction,
            fixed_params=dict(self.params.network_params),
        )
        fit = fit_network(self.builder, request, cache=self.cache)
        for note in fit.notes:
            warnings.warn(f"{name}: {note}", PlanningWarning, stacklevel=2)
        return fit

    def fit_fields(self, fit: NetworkFit) -> dict[str, Any]:
        origin = self.network_entry.origin
        spec = NetworkSpec(
            name=self.builder.name,
            version=str(self.builder.version),
            params=fit.params.model_dump(mode="json") if hasattr(fit.params, "model_dump") else dict(fit.params),
            plugin=origin.plugin,
            dist=origin.dist,
            dist_version=origin.version,
        )
        return {
            "patch_size": list(fit.patch_size),
            "batch_size": fit.batch_size,
            "network": spec,
            "memory_estimate_bytes": fit.memory_bytes,
        }

    def configuration(self, name: str, plans_name: str, spacing: Any, median: Any, voxels: float) -> ConfigurationPlan:
        fit = self.fit(spacing, median, voxels, name)
        return ConfigurationPlan(
            name=name,
            data_identifier=f"{plans_name}_{name}",
            spacing=[float(s) for s in spacing],
            median_image_size_in_voxels=[float(m) for m in median],
            normalization=list(self.normalization),
            use_mask_for_norm=self.use_mask_for_norm(),
            resampling=ResamplingSpec(anisotropy_threshold=self.params.anisotropy_threshold),
            **self.fit_fields(fit),
        )

    def use_mask_for_norm(self) -> list[bool]:
        if self.fingerprint.median_relative_size_after_cropping >= self.params.mask_size_threshold:
            return [False] * len(self.normalization)
        norms = self.registries.normalization
        return [bool(getattr(norms.get(s), "zero_outside_mask", False)) for s in self.normalization]

    def plugin_versions(self) -> dict[str, str]:
        """Distribution -> version of every plugin whose components these plans use."""
        entries = [self.network_entry]
        if self.planner.name in self.registries.planner:
            entries.append(self.registries.planner.entry(self.planner.name))
        entries += [self.registries.normalization.entry(s) for s in dict.fromkeys(self.normalization)]
        if self.fingerprint.image_io in self.registries.image_io:
            entries.append(self.registries.image_io.entry(self.fingerprint.image_io))
        out = {"segforge": __version__}
        for entry in entries:
            if entry.origin.dist:
                out[entry.origin.dist] = entry.origin.version or ""
        return dict(sorted(out.items()))

    def plans(self, plans_name: str, geo: Geometry, configs: dict[str, ConfigurationPlan]) -> Plans:
        fp = self.fingerprint
        fwd = geo.transpose_forward
        median_spacing = np.median(np.asarray(fp.spacings, dtype=np.float64), axis=0)[fwd]
        median_shape = np.median(np.asarray(fp.shapes_after_crop, dtype=np.float64), axis=0)[fwd]
        return Plans(
            dataset_name=fp.dataset_name,
            plans_name=plans_name,
            planner=self.planner.name,
            planner_version=self.planner.version,
            planner_params=self.params.model_dump(mode="json"),
            segforge_version=__version__,
            plugins=self.plugin_versions(),
            fingerprint_digest=fp.digest(),
            image_io=fp.image_io,
            transpose_forward=list(fwd),
            transpose_backward=list(geo.transpose_backward),
            original_median_spacing_after_transp=[float(s) for s in median_spacing],
            original_median_shape_after_transp=[float(round(s)) for s in median_shape],
            labels=dict(fp.labels),
            foreground_intensity_properties_per_channel=dict(fp.foreground_intensity_properties_per_channel),
            configurations=configs,
        )


def normalization_for_channel(channel_name: str, registries: Any) -> str:
    """The normalization scheme for a dataset.json channel name (nnU-Net's mapping; default zscore)."""
    key = channel_name.casefold()
    scheme = CHANNEL_SCHEMES.get(key)
    if scheme is None:
        scheme = key if key in registries.normalization else DEFAULT_SCHEME
    if scheme not in registries.normalization:
        registries.normalization.get(scheme)  # raises the did-you-mean error listing what is installed
    return scheme
