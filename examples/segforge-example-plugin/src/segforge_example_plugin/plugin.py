"""The module named by the entry point: segforge calls these hooks."""

from segforge import hookimpl
from segforge_example_plugin import __version__


@hookimpl
def segforge_register_networks(registry):
    from segforge_example_plugin.network import TinyUNetBuilder

    registry.add(TinyUNetBuilder())


@hookimpl
def segforge_report_header():
    return f"segforge-example-plugin {__version__}: adds network tiny_unet"
