"""The ``swin_unet`` network builder: params, accepted patch sizes, topology proposal, build.

Importing this module does not import torch; :meth:`SwinUNetBuilder.build` does.

**Accepted patches.** Every edge must be a multiple of ``patch_size * 2^(n_stages - 1) *
window_size`` along its axis, and at least that (see :func:`segforge_swinunet.params.divisors`).
Windows are never clamped to a smaller feature map. Swin clamps them (and then stops
shifting), but with clamping the accepted edges stop being "every multiple of d above a
minimum" - for 4 stages, patch 2 and window 4 an edge of ``16 k`` would work for ``k`` in
``{1, 2}`` and every multiple of 4, but not for 3, 5, 6, 7 - which a planner's
``round_up`` / ``round_down`` cannot express. Instead :meth:`SwinUNetBuilder.propose` sizes the
window so the deepest stage holds a whole number of windows.

**Proposal rule** (:meth:`SwinUNetBuilder.propose`), for a requested patch and spacing:

1. ``patch_size`` is 2 per axis, and 1 along axes whose spacing is at least twice the
   finest (nnU-Net's anisotropy threshold): the coarse axis is not compressed further.
2. ``n_stages`` is the most stages (at most 4) for which the deepest stage of the requested
   patch still has at least 3 tokens per axis; at least 2.
3. ``window_size`` per axis is the window from 3 to 7 tokens for which rounding the
   requested edge up to ``patch * 2^(n-1) * window`` adds the fewest voxels (ties: the
   larger window, more context per attention).
4. ``depths`` 2 per stage, ``num_heads`` 3, 6, 12, 24 (16 channels per head at the default
   ``embed_dim`` of 48).

nnU-Net's hippocampus patch [40, 56, 40] is rejected by the default params (divisor 64 per
axis); proposing for it gives 3 stages with windows [5, 7, 5] (divisors [40, 56, 40]).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from segforge.errors import ConfigError
from segforge.networks.builder import NetworkBuilder, NetworkConstraints, NetworkParams, TopologyRequest
from segforge_swinunet.params import SwinUNetParams, divisors

if TYPE_CHECKING:  # pragma: no cover
    from segforge_swinunet.network import SwinUNet

#: an axis whose spacing is at least this multiple of the finest is not embedded with stride 2
ANISOTROPY_THRESHOLD = 2.0
MAX_STAGES = 4
MIN_WINDOW = 3
MAX_WINDOW = 7
BASE_HEADS = 3


def embedding_strides(spacing: Sequence[float]) -> list[int]:
    """``patch_size`` per axis: 2, or 1 along axes at least :data:`ANISOTROPY_THRESHOLD` x coarser than the finest."""
    finest = min(spacing)
    return [1 if s >= ANISOTROPY_THRESHOLD * finest else 2 for s in spacing]


def stage_count(patch: Sequence[int], strides: Sequence[int]) -> int:
    """The most stages (<= :data:`MAX_STAGES`, >= 2) that leave :data:`MIN_WINDOW` tokens per axis at the bottom."""
    for n in range(MAX_STAGES, 2, -1):
        if all(edge / (p * 2 ** (n - 1)) >= MIN_WINDOW for edge, p in zip(patch, strides, strict=True)):
            return n
    return 2


def best_window(edge: int, unit: int) -> int:
    """The window (MIN..MAX_WINDOW) whose divisor ``unit * window`` pads ``edge`` the least; ties: larger."""

    def padded(window: int) -> int:
        step = unit * window
        return math.ceil(edge / step) * step

    return min(range(MIN_WINDOW, MAX_WINDOW + 1), key=lambda w: (padded(w), -w))


class SwinUNetBuilder(NetworkBuilder):
    """Swin-transformer U-Net for 2D and 3D: shifted-window attention encoder, conv decoder, conv stem skip.

    A strided-conv patch embedding feeds ``len(depths)`` stages of window / shifted-window
    multi-head self-attention with relative position bias, with 2x patch merging between
    stages. A decoder of transposed convs and conv blocks joins each stage's output back
    to full resolution, where a two-conv stem adds fine detail. Deep supervision outputs
    come full resolution first, like segforge's generic_unet.

    Patch edges must be multiples of patch_size * 2^(stages-1) * window_size per axis (and
    at least that): `propose` picks windows and depth so planned patches fit.
    """

    name: ClassVar[str] = "swin_unet"
    version: ClassVar[str] = "0.1.0"
    dims: ClassVar[tuple[int, ...]] = (2, 3)
    Params: ClassVar[type[SwinUNetParams]] = SwinUNetParams
    recommended_trainer: ClassVar[str | None] = "swin_adamw"

    def constraints(self, params: NetworkParams | dict[str, Any]) -> NetworkConstraints:
        """Each edge a multiple of ``patch_size * 2^(n_stages-1) * window_size``, at least one such step."""
        params = self.parse_params(params)
        steps = divisors(params)
        return NetworkConstraints(divisors=steps, min_edge=steps, deep_supervision=True)

    def describe(self, params: NetworkParams | dict[str, Any]) -> str:
        """One table cell for ``segforge plan``: stages with depths and heads, window, patch embedding, width."""
        params = self.parse_params(params)

        def axes(values: Sequence[int]) -> str:
            return "x".join(map(str, values))

        return (
            f"{len(params.depths)} stages: depths {'-'.join(map(str, params.depths))}, "
            f"heads {'-'.join(map(str, params.num_heads))}, window {axes(params.window_size)}, "
            f"patch {axes(params.patch_size)}, embed {params.embed_dim}"
        )

    def propose(self, request: TopologyRequest) -> SwinUNetParams:
        """Params for the request's patch and spacing (the rule is in this module's docstring)."""
        patch, spacing = tuple(request.patch_size), tuple(request.spacing)
        if len(patch) not in self.dims or len(spacing) != len(patch):
            raise ConfigError(
                f"network '{self.name}': cannot propose for patch {list(patch)} with spacing {list(spacing)}",
                hint="swin_unet supports 2D and 3D patches with one spacing per axis",
            )
        strides = embedding_strides(spacing)
        n = stage_count(patch, strides)
        windows = [best_window(edge, p * 2 ** (n - 1)) for edge, p in zip(patch, strides, strict=True)]
        return SwinUNetParams(
            dims=len(patch),
            depths=[2] * n,
            num_heads=[BASE_HEADS * 2**i for i in range(n)],
            window_size=windows,
            patch_size=strides,
        )

    def build(
        self,
        params: NetworkParams | dict[str, Any],
        in_channels: int,
        num_classes: int,
        deep_supervision: bool = True,
    ) -> SwinUNet:
        """The network for ``params``; ``forward`` returns a list of logits when ``deep_supervision``."""
        from segforge_swinunet.network import SwinUNet, initialize

        params = self.parse_params(params)
        network = SwinUNet(params, in_channels, num_classes, deep_supervision)
        if not next(network.parameters()).is_meta:  # meta (memory estimate): nothing to initialize
            initialize(network)
        return network
