"""Planner test helpers: fingerprints built directly, and fake network builders registered like a plugin's."""

from __future__ import annotations

import math
from typing import Any

from segforge.config.fingerprint import CaseFingerprint, Fingerprint
from segforge.config.plans import IntensityStats
from segforge.networks.builder import NetworkConstraints, NetworkParams, TopologyRequest
from segforge.registry import Origin, RegistrarView


class FakeParams(NetworkParams):
    dims: int = 3


class Multiple32Builder:
    """A transformer-like network: every patch edge a multiple of 32 (min 32), memory linear in voxels."""

    name = "fake32"
    version = "0.1"
    dims = (2, 3)
    Params = FakeParams
    fixed_bytes = 10 * 2**20
    bytes_per_voxel = 4000

    def propose(self, request: TopologyRequest) -> FakeParams:
        return FakeParams(dims=len(request.patch_size))

    def constraints(self, params: Any) -> NetworkConstraints:
        n = FakeParams.model_validate(params).dims if isinstance(params, dict) else params.dims
        return NetworkConstraints(divisors=(32,) * n, min_edge=(32,) * n)

    def estimate_memory(
        self, params: Any, patch_size: tuple[int, ...], in_channels: int, num_classes: int, batch_size: int = 1
    ) -> int:
        return int(self.fixed_bytes + batch_size * math.prod(patch_size) * self.bytes_per_voxel)

    def build(self, params: Any, in_channels: int, num_classes: int, deep_supervision: bool = True) -> Any:
        raise NotImplementedError


class HugeBuilder(Multiple32Builder):
    """Needs more memory than any budget: the planner must still return an accepted patch, and warn."""

    name = "huge"
    fixed_bytes = 10**15


def register(registries: Any, *builders: Any) -> Any:
    """Add ``builders`` to ``registries`` as if a plugin 'test.fakes' (dist fake-nets 0.1) registered them."""
    view = RegistrarView("network", Origin("test.fakes", "fake-nets", "0.1"))
    for builder in builders:
        view.add(builder)
    for entry in view.staged:
        registries.network._commit(entry)
    return registries


STATS = IntensityStats(mean=100, median=90, std=30, min=0, max=400, percentile_00_5=5, percentile_99_5=300)


def make_fingerprint(
    spacings: list[list[float]],
    shapes: list[list[int]],
    channels: tuple[str, ...] = ("MRI",),
    num_labels: int = 3,
    relative_size: float = 1.0,
    name: str = "Dataset999_Test",
) -> Fingerprint:
    """A fingerprint with one case per (spacing, shape) pair; shapes are the shapes after cropping."""
    cases = [
        CaseFingerprint(case_id=f"case_{i:03d}", spacing=sp, shape_before_crop=sh, shape_after_crop=sh)
        for i, (sp, sh) in enumerate(zip(spacings, shapes, strict=True))
    ]
    return Fingerprint(
        dataset_name=name,
        segforge_version="test",
        raw_digest="0" * 64,
        channel_names={str(i): c for i, c in enumerate(channels)},
        labels={"background": 0, **{f"label{i}": i for i in range(1, num_labels)}},
        cases=cases,
        samples_per_case=1000,
        foreground_intensity_properties_per_channel={str(i): STATS for i in range(len(channels))},
        median_relative_size_after_cropping=relative_size,
    )
