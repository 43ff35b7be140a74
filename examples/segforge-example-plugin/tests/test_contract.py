"""The contract kit checks the builder: build in 2D and 3D, shapes, deep supervision, constraints."""

from segforge_example_plugin.network import TinyUNetBuilder, TinyUNetParams

from segforge.testing import NetworkBuilderContract


class TestTinyUNet(NetworkBuilderContract):
    builder = TinyUNetBuilder()
    params_2d = TinyUNetParams(dims=2, features=4)
    params_3d = TinyUNetParams(dims=3, features=4)


def test_registered_with_its_origin():
    import segforge

    entry = segforge.get_registries().network.entry("tiny_unet")
    assert entry.origin.dist == "segforge-example-plugin"
    assert entry.origin.plugin == "example"
