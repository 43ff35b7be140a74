"""The network-builder contract that planners, trainers and plugins share.

A network builder turns JSON-able parameters into an ``nn.Module``. Planners never assume
a U-Net: they ask the builder for a topology for a patch (``propose``), for the patch sizes
it accepts (``constraints``) and for the memory a training step needs (``estimate_memory``),
so a transformer that needs patch edges divisible by 32 is never handed nnU-Net's 40x56x40.

Builders subclass :class:`NetworkBuilder` (or just provide the same attributes): set
``name``, ``version``, ``dims`` and a nested pydantic ``Params`` model, implement
``propose``, ``constraints`` and ``build``. ``estimate_memory`` has a generic default that
traces activation sizes on the meta device, so it works for any network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn


class NetworkParams(BaseModel):
    """Base for builders' ``Params``: unknown keys are errors, values round-trip through JSON."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class TopologyRequest:
    """What a planner knows when it asks a builder for a topology."""

    patch_size: tuple[int, ...]
    spacing: tuple[float, ...]
    in_channels: int
    num_classes: int
    deep_supervision: bool = True


@dataclass(frozen=True)
class NetworkConstraints:
    """Which patch sizes a network with given params accepts.

    Each patch edge must be a multiple of ``divisors[i]`` and at least ``min_edge[i]``.
    """

    divisors: tuple[int, ...]
    min_edge: tuple[int, ...]
    deep_supervision: bool = True

    def problems(self, patch_size: tuple[int, ...]) -> list[str]:
        """Human-readable reasons why ``patch_size`` is not accepted (empty when it is)."""
        if len(patch_size) != len(self.divisors):
            return [f"patch {list(patch_size)} has {len(patch_size)} axes, the network needs {len(self.divisors)}"]
        out = []
        for axis, (edge, div, low) in enumerate(zip(patch_size, self.divisors, self.min_edge, strict=True)):
            if edge % div:
                out.append(f"axis {axis}: {edge} is not a multiple of {div}")
            if edge < low:
                out.append(f"axis {axis}: {edge} is below the minimum {low}")
        return out

    def accepts(self, patch_size: tuple[int, ...]) -> bool:
        return not self.problems(patch_size)

    def round_down(self, patch_size: tuple[int, ...]) -> tuple[int, ...]:
        """The largest accepted patch not larger than ``patch_size`` (never below the minimum)."""
        return tuple(
            max(low, (edge // div) * div, math.ceil(low / div) * div)
            for edge, div, low in zip(patch_size, self.divisors, self.min_edge, strict=True)
        )

    def round_up(self, patch_size: tuple[int, ...]) -> tuple[int, ...]:
        """The smallest accepted patch not smaller than ``patch_size``."""
        return tuple(
            max(math.ceil(edge / div) * div, math.ceil(low / div) * div)
            for edge, div, low in zip(patch_size, self.divisors, self.min_edge, strict=True)
        )


class NetworkBuilder:
    """Convenience base for network builders (plugins may also duck-type it)."""

    name: ClassVar[str]
    version: ClassVar[str] = "1.0"
    dims: ClassVar[tuple[int, ...]] = (2, 3)
    Params: ClassVar[type[NetworkParams]]
    #: trainer used when ``--trainer`` is not given (``None``: segforge's default trainer)
    recommended_trainer: ClassVar[str | None] = None

    def parse_params(self, params: dict[str, Any] | NetworkParams) -> NetworkParams:
        """Validate ``params`` (a dict from JSON or a Params instance) into this builder's Params."""
        if isinstance(params, self.Params):
            return params
        from segforge.registry import parse_component_params

        return parse_component_params("network", self.name, self.Params, params)

    def propose(self, request: TopologyRequest) -> NetworkParams:
        """Params for a patch size and spacing (e.g. pooling per axis, kernel sizes)."""
        raise NotImplementedError

    def constraints(self, params: NetworkParams) -> NetworkConstraints:
        raise NotImplementedError

    def build(
        self, params: NetworkParams, in_channels: int, num_classes: int, deep_supervision: bool = True
    ) -> nn.Module:
        raise NotImplementedError

    def estimate_memory(
        self,
        params: NetworkParams,
        patch_size: tuple[int, ...],
        in_channels: int,
        num_classes: int,
        batch_size: int = 1,
    ) -> int:
        """Bytes one training step needs (weights, optimizer state, activations for backward)."""
        from segforge.networks.memory import estimate_training_memory

        return estimate_training_memory(self, params, patch_size, in_channels, num_classes, batch_size)
