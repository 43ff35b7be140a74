"""Builtin plugin ``builtin.networks``: registers ``generic_unet`` and ``residual_unet`` (and, where
nnU-Net's ``dynamic_network_architectures`` is installed, ``nnunet_dna`` for imported nnU-Net models).

It registers through the same hook as any third-party network plugin. The builders import
torch only when a network is built, so loading this plugin stays cheap.
"""

from __future__ import annotations

from segforge.hookspecs import hookimpl
from segforge.interop.nnunet import dna_network
from segforge.networks.generic_unet import GenericUNetBuilder
from segforge.networks.residual_unet import ResidualUNetBuilder


@hookimpl
def segforge_register_networks(registry) -> None:
    registry.add(GenericUNetBuilder())
    registry.add(ResidualUNetBuilder())
    if dna_network.available():
        registry.add(dna_network.NnunetDnaBuilder())
