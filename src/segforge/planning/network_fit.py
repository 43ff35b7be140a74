"""Patch size, topology and batch size for one configuration, from any network builder.

nnU-Net v2 ties this search to its own U-Net: pooling comes from ``get_pool_and_conv_props``
and the memory model is a feature-map count compared with reference constants. segforge asks
the configuration's *network builder* instead, so the same search works for any network:

1. an initial patch with the aspect ratio of the spacing and the volume of 256^3 (3D) or
   2048^2 (2D) voxels, clipped to the median image shape (nnU-Net v2's heuristic);
2. ``builder.propose(...)`` gives the topology for that patch, and the patch is snapped up
   to what ``builder.constraints(params)`` accepts (nnU-Net pads to the pooling divisors);
3. while ``builder.estimate_memory(..., batch_size=min_batch)`` exceeds the budget, shrink
   the axis that is largest relative to the median shape by one divisor step (nnU-Net's
   rule, including its re-derivation of the divisor for the smaller patch) and propose again;
4. the batch size is the number of samples that fit beside the fixed cost (weights and
   optimizer state), capped so one batch covers at most 5% of the dataset's voxels, and at
   least the minimum batch size.

The patch returned is always one the builder's constraints accept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from segforge.errors import ConfigError, SegforgeError
from segforge.networks.builder import TopologyRequest
from segforge.registry import parse_component_params

#: nnU-Net v2's initial patch volumes: 256^3 voxels in 3D, 2048^2 pixels in 2D
INITIAL_PATCH_EDGE = {2: 2048, 3: 256}
GIB = 1024**3


@dataclass(frozen=True)
class FitRequest:
    """What the search needs to know about a configuration and the dataset."""

    spacing: tuple[float, ...]
    median_shape: tuple[float, ...]
    in_channels: int
    num_classes: int
    budget_bytes: float
    dataset_voxels: float
    min_batch_size: int = 2
    max_dataset_fraction: float = 0.05
    #: params the user fixed (``--network-param``): they replace the builder's proposal for every patch
    fixed_params: dict[str, Any] = field(default_factory=dict)


@dataclass
class NetworkFit:
    """The outcome: network params, an accepted patch, the batch size and the memory it should need."""

    params: Any
    patch_size: tuple[int, ...]
    batch_size: int
    memory_bytes: int
    notes: list[str] = field(default_factory=list)


def initial_patch(spacing: Sequence[float], median_shape: Sequence[float]) -> tuple[int, ...]:
    """A patch with the spacing's aspect ratio and nnU-Net's volume, no larger than the median image.

    nnU-Net keeps fractional median edges (a median over an even number of cases); they are
    rounded up here because builders take whole voxels.
    """
    dims = len(spacing)
    inverse = 1.0 / np.asarray(spacing, dtype=np.float64)
    scale = (INITIAL_PATCH_EDGE[dims] ** dims / np.prod(inverse)) ** (1.0 / dims)
    patch = [round(float(v)) for v in inverse * scale]
    return tuple(max(1, min(p, math.ceil(m))) for p, m in zip(patch, median_shape, strict=True))


class _Search:
    """One builder and request; memoizes proposals and memory estimates (the slow part)."""

    def __init__(self, builder: Any, request: FitRequest, cache: dict | None = None) -> None:
        self.builder = builder
        self.request = request
        self._memory: dict[tuple, int] = {} if cache is None else cache

    def propose(self, patch: tuple[int, ...]) -> tuple[Any, tuple[int, ...]]:
        """Params for ``patch`` and the patch snapped up to what they accept."""
        r = self.request
        params = self.builder.propose(TopologyRequest(tuple(patch), r.spacing, r.in_channels, r.num_classes))
        if r.fixed_params:
            merged = {**params.model_dump(mode="json"), **r.fixed_params}
            params = parse_component_params("network", self.builder.name, self.builder.Params, merged)
        constraints = self.builder.constraints(params)
        snapped = tuple(int(p) for p in constraints.round_up(tuple(patch)))
        if not constraints.accepts(snapped):
            raise ConfigError(
                f"network '{self.builder.name}' rejects its own rounded patch {list(snapped)}: "
                f"{'; '.join(constraints.problems(snapped))}",
                hint="the builder's constraints().round_up must return an accepted patch; report it to its authors",
            )
        return params, snapped

    def memory(self, params: Any, patch: tuple[int, ...], batch: int) -> int:
        r = self.request
        key = (self.builder.name, _params_key(params), tuple(patch), batch, r.in_channels, r.num_classes)
        if key not in self._memory:
            self._memory[key] = int(
                self.builder.estimate_memory(params, tuple(patch), r.in_channels, r.num_classes, batch)
            )
        return self._memory[key]

    def divisor(self, params: Any, axis: int) -> int:
        return int(self.builder.constraints(params).divisors[axis])

    def shrink(self, params: Any, patch: tuple[int, ...]) -> tuple[Any, tuple[int, ...]] | None:
        """The next smaller patch (and params), or None when no axis can shrink any more."""
        for axis in _axes_by_excess(patch, self.request.median_shape):
            smaller = self._shrink_axis(params, patch, axis)
            if smaller is not None:
                return smaller
        return None

    def _shrink_axis(self, params: Any, patch: tuple[int, ...], axis: int) -> tuple[Any, tuple[int, ...]] | None:
        # nnU-Net: step down by the current divisor, re-derive the divisor the smaller patch would
        # have, and step the original patch down by that one, so no valid size (e.g. 224 between
        # 256 and 192) is skipped
        probe = list(patch)
        probe[axis] -= self.divisor(params, axis)
        if probe[axis] < 1:
            return None
        try:
            step = self.divisor(self.propose(tuple(probe))[0], axis)
            candidate = list(patch)
            candidate[axis] -= step
            if candidate[axis] < 1:
                return None
            new_params, new_patch = self.propose(tuple(candidate))
        except SegforgeError:  # the builder cannot make a network for so small a patch
            return None
        if math.prod(new_patch) >= math.prod(patch):
            return None
        return new_params, new_patch


def _params_key(params: Any) -> str:
    dump = getattr(params, "model_dump_json", None)
    return dump() if dump else repr(params)


def _axes_by_excess(patch: Sequence[int], median_shape: Sequence[float]) -> list[int]:
    """Axes, the one largest relative to the median shape first; ties: the later axis first (as nnU-Net)."""
    ratios = [p / max(m, 1e-8) for p, m in zip(patch, median_shape, strict=True)]
    return sorted(range(len(patch)), key=lambda i: (ratios[i], i), reverse=True)


def fit_network(
    builder: Any, request: FitRequest, start_patch: Sequence[int] | None = None, cache: dict | None = None
) -> NetworkFit:
    """Search patch, params and batch size for ``builder`` (see the module docstring).

    ``cache`` (a dict) lets several searches with the same builder share memory estimates,
    which matters for the 3d_lowres search that re-plans at many spacings.
    """
    try:
        return _fit(builder, request, start_patch, cache)
    except Exception as exc:  # the builder is a plugin's code: name the plugin, not segforge's internals
        from segforge.component_errors import component_failure, component_origin, should_wrap

        origin = component_origin("network", builder)
        if should_wrap(exc, origin):
            raise component_failure("network", builder, "planning (propose/constraints/estimate_memory)", exc,
                                    origin) from exc  # fmt: skip
        raise


def _fit(builder: Any, request: FitRequest, start_patch: Sequence[int] | None, cache: dict | None) -> NetworkFit:
    search = _Search(builder, request, cache)
    start = tuple(start_patch) if start_patch is not None else initial_patch(request.spacing, request.median_shape)
    params, patch = search.propose(start)
    notes: list[str] = []
    while search.memory(params, patch, request.min_batch_size) > request.budget_bytes:
        smaller = search.shrink(params, patch)
        if smaller is None:
            need = search.memory(params, patch, request.min_batch_size) / GIB
            notes.append(
                f"network '{builder.name}' needs ~{need:.1f} GiB for batch {request.min_batch_size} even at the "
                f"smallest patch {list(patch)}, more than the {request.budget_bytes / GIB:.1f} GiB budget"
            )
            break
        params, patch = smaller
    batch, memory = _batch_size(search, params, patch)
    return NetworkFit(params, patch, batch, memory, notes)


def _batch_size(search: _Search, params: Any, patch: tuple[int, ...]) -> tuple[int, int]:
    """Samples that fit beside the fixed cost, capped at the dataset fraction, at least the minimum."""
    r = search.request
    one, two = search.memory(params, patch, 1), search.memory(params, patch, 2)
    per_sample = max(two - one, 1)
    fixed = one - per_sample
    by_memory = int((r.budget_bytes - fixed) // per_sample)
    by_dataset = round(r.dataset_voxels * r.max_dataset_fraction / math.prod(patch))
    batch = max(min(by_memory, by_dataset), r.min_batch_size)
    return batch, int(fixed + batch * per_sample)
