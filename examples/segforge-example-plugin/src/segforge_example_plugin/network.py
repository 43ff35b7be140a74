"""``tiny_unet``: a two-level U-Net, small enough to read in one sitting.

It shows what a network builder provides: a pydantic ``Params`` model, the patch sizes it
accepts (``constraints``), a topology for a patch (``propose``), and ``build``. The memory
estimate is inherited from :class:`segforge.networks.builder.NetworkBuilder`, which traces
activation sizes on the meta device, so it works for this network without extra code.
"""

from __future__ import annotations

import torch
from torch import nn

from segforge.networks.builder import NetworkBuilder, NetworkConstraints, NetworkParams, TopologyRequest


class TinyUNetParams(NetworkParams):
    features: int = 8
    dims: int = 3


class TinyUNet(nn.Module):
    def __init__(self, params: TinyUNetParams, in_channels: int, num_classes: int, deep_supervision: bool) -> None:
        super().__init__()
        conv = nn.Conv3d if params.dims == 3 else nn.Conv2d
        up = nn.ConvTranspose3d if params.dims == 3 else nn.ConvTranspose2d
        norm = nn.InstanceNorm3d if params.dims == 3 else nn.InstanceNorm2d
        f = params.features

        def block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
            return nn.Sequential(
                conv(cin, cout, 3, stride, 1), norm(cout, affine=True), nn.LeakyReLU(0.01, inplace=True)
            )

        self.enc1 = block(in_channels, f)
        self.enc2 = block(f, 2 * f, stride=2)
        self.up = up(2 * f, f, 2, 2)
        self.dec1 = block(2 * f, f)
        self.head = conv(f, num_classes, 1)
        self.head_low = conv(2 * f, num_classes, 1)
        self.deep_supervision = deep_supervision
        scale = [1] * params.dims
        self.deep_supervision_scales = [scale, [2] * params.dims] if deep_supervision else [scale]

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        skip = self.enc1(x)
        low = self.enc2(skip)
        out = self.head(self.dec1(torch.cat([self.up(low), skip], dim=1)))
        return [out, self.head_low(low)] if self.deep_supervision else out


class TinyUNetBuilder(NetworkBuilder):
    """A two-level 2D/3D U-Net (example plugin)."""

    name = "tiny_unet"
    version = "0.1.0"
    dims = (2, 3)
    Params = TinyUNetParams

    def propose(self, request: TopologyRequest) -> TinyUNetParams:
        return TinyUNetParams(dims=len(request.patch_size))

    def constraints(self, params: TinyUNetParams) -> NetworkConstraints:
        return NetworkConstraints(divisors=(2,) * params.dims, min_edge=(4,) * params.dims)

    def build(self, params, in_channels: int, num_classes: int, deep_supervision: bool = True) -> nn.Module:
        return TinyUNet(self.parse_params(params), in_channels, num_classes, deep_supervision)
