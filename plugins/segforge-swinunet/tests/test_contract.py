"""segforge's contract kit checks the builder in 2D and 3D; plus what the entry point registers."""

from __future__ import annotations

import importlib.metadata

import pytest
from segforge_swinunet.builder import SwinUNetBuilder
from segforge_swinunet.params import SwinUNetParams

from segforge.plugins import SegforgeManager
from segforge.testing import NetworkBuilderContract


class TestSwinUNet(NetworkBuilderContract):
    builder = SwinUNetBuilder()
    params_2d = SwinUNetParams(dims=2, embed_dim=12, depths=[2, 1], num_heads=[3, 6], window_size=4)
    params_3d = SwinUNetParams(dims=3, embed_dim=12, depths=[2, 1], num_heads=[3, 6], window_size=[2, 4, 2])
    patch_2d = (16, 16)
    patch_3d = (8, 16, 8)


def _installed() -> bool:
    try:
        importlib.metadata.distribution("segforge-swinunet")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


needs_install = pytest.mark.skipif(not _installed(), reason="segforge-swinunet is not pip-installed (no entry point)")


@needs_install
def test_entry_point_registers_swin_unet_with_its_origin():
    manager = SegforgeManager(autoload=True)
    entry = manager.require_ok().network.entry("swin_unet")
    assert (entry.origin.plugin, entry.origin.dist, entry.origin.version) == ("swinunet", "segforge-swinunet", "0.1.0")
    assert entry.version == "0.1.0"
    assert entry.component.recommended_trainer == "swin_adamw"
    assert entry.summary.startswith("Swin-transformer U-Net for 2D and 3D")
    assert manager.plugin("swinunet").hooks == [
        "segforge_register_networks",
        "segforge_register_trainers",
        "segforge_report_header",
    ]
    trainer = manager.require_ok().trainer.entry("swin_adamw")
    assert (trainer.origin.dist, trainer.component.Params().initial_lr) == ("segforge-swinunet", 3e-4)


@needs_install
def test_report_header_names_the_network():
    lines = SegforgeManager(autoload=True).report_header()
    assert "swinunet: segforge-swinunet 0.1.0: network swin_unet, trainer swin_adamw" in lines


@needs_install
def test_blocking_the_plugin_removes_its_components():
    manager = SegforgeManager(autoload=True, blocked=["swinunet"])
    assert manager.plugin("swinunet").status == "blocked"
    registries = manager.require_ok()
    assert "swin_unet" not in registries.network and "swin_adamw" not in registries.trainer
