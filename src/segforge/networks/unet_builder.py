"""What the builtin U-Net builders share: topology proposal, patch constraints and the build template.

Subclasses only say which Params they use, how a proposed topology fills them
(:meth:`UNetBuilderBase.params_for`) and which encoder they build (:meth:`make_encoder`).
This module imports no torch; ``build`` imports it when a network is actually made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from segforge.errors import ConfigError
from segforge.networks.builder import NetworkBuilder, NetworkConstraints, NetworkParams, TopologyRequest
from segforge.networks.topology import Topology, cumulative_divisors, features_per_stage, pool_and_conv_props
from segforge.networks.unet_params import UNetParams

if TYPE_CHECKING:  # pragma: no cover
    from segforge.networks.encoders import Encoder
    from segforge.networks.layers import LayerSpec
    from segforge.networks.unet import UNet


class UNetBuilderBase(NetworkBuilder):
    """nnU-Net-style U-Net builder; see :func:`segforge.networks.topology.pool_and_conv_props` for ``propose``."""

    dims: ClassVar[tuple[int, ...]] = (2, 3)
    Params: ClassVar[type[UNetParams]] = UNetParams
    #: nnU-Net v2's planner constants
    base_features: ClassVar[int] = 32
    max_features: ClassVar[dict[int, int]] = {2: 512, 3: 320}
    min_feature_map_size: ClassVar[int] = 4
    #: nnU-Net v2 does not limit pools per axis (v1's planner used 5); set an int to cap the depth
    max_pools_per_axis: ClassVar[int | None] = None

    # -- planning ---------------------------------------------------------------------
    def topology(self, request: TopologyRequest) -> Topology:
        """Strides, kernels and padded patch for the request (nnU-Net v2's get_pool_and_conv_props)."""
        return pool_and_conv_props(
            request.spacing, request.patch_size, self.min_feature_map_size, self.max_pools_per_axis
        )

    def propose_with_patch(self, request: TopologyRequest) -> tuple[UNetParams, tuple[int, ...]]:
        """Params for the request and the patch padded up to what they accept.

        The padded patch equals ``constraints(params).round_up(request.patch_size)``: nnU-Net pads
        the same way, so a planner may use either.
        """
        topo = self.topology(request)
        if topo.n_stages < 2:
            raise ConfigError(
                f"network '{self.name}': patch {list(request.patch_size)} is too small for a U-Net "
                f"(no axis can be downsampled while keeping {self.min_feature_map_size} voxels in the bottleneck)",
                hint=f"use a larger patch (edges of {3 * self.min_feature_map_size} voxels or more always allow one)",
            )
        dims = len(request.patch_size)
        feats = features_per_stage(topo.n_stages, self.base_features, self.max_features[dims])
        params = self.params_for(topo, feats)
        return params, self.constraints(params).round_up(tuple(request.patch_size))

    def propose(self, request: TopologyRequest) -> UNetParams:
        """Params for the request; the patch it needs is ``constraints(params).round_up(request.patch_size)``."""
        return self.propose_with_patch(request)[0]

    def params_for(self, topology: Topology, features: list[int]) -> UNetParams:
        """This builder's Params for a proposed topology (plus :meth:`proposed_extras`)."""
        return self.Params(
            features_per_stage=features,
            kernel_sizes=[list(k) for k in topology.kernel_sizes],
            strides=[list(s) for s in topology.strides],
            **self.proposed_extras(topology.n_stages),
        )

    def proposed_extras(self, n_stages: int) -> dict[str, Any]:
        """Builder-specific fields of a proposal (e.g. convs or residual blocks per stage)."""
        return {}

    def constraints(self, params: NetworkParams | dict[str, Any]) -> NetworkConstraints:
        """Each edge a multiple of the cumulative stride; pooled axes at least twice that.

        A minimum of ``2 * divisor`` on every downsampled axis keeps the bottleneck at >= 2 voxels
        per pooled axis: instance norm cannot train on a single voxel, and a 1-voxel bottleneck
        sees no context. Axes that are never pooled accept any edge >= 1.
        """
        params = self.parse_params(params)
        divisors = cumulative_divisors(params.strides)
        min_edge = tuple(2 * d if d > 1 else 1 for d in divisors)
        return NetworkConstraints(divisors=divisors, min_edge=min_edge, deep_supervision=True)

    # -- building ---------------------------------------------------------------------
    def layer_spec(self, params: UNetParams) -> LayerSpec:
        from segforge.networks.layers import LayerSpec

        return LayerSpec(
            dims=params.dims,
            conv_bias=params.conv_bias,
            norm=params.norm,
            norm_kwargs=dict(params.norm_kwargs),
            nonlin=params.nonlin,
            nonlin_kwargs=dict(params.nonlin_kwargs),
            dropout=params.dropout,
        )

    def make_encoder(self, params: UNetParams, spec: LayerSpec, in_channels: int) -> Encoder:
        raise NotImplementedError

    def initialize(self, network: UNet) -> None:
        """nnU-Net's He init (kaiming normal, a=1e-2, zero biases)."""
        from segforge.networks.blocks import he_init

        he_init(network, 1e-2)

    def build(
        self,
        params: NetworkParams | dict[str, Any],
        in_channels: int,
        num_classes: int,
        deep_supervision: bool = True,
    ) -> UNet:
        """The U-Net for ``params``; ``forward`` returns a list of logits when ``deep_supervision``."""
        from segforge.networks.unet import UNet

        params = self.parse_params(params)
        encoder = self.make_encoder(params, self.layer_spec(params), in_channels)
        network = UNet(encoder, num_classes, params.n_conv_per_stage_decoder, deep_supervision)
        if not next(network.parameters()).is_meta:  # meta (memory estimate): no values to initialize
            self.initialize(network)
        return network
