"""segforge's public test kit for plugin authors.

``from segforge.testing import NetworkBuilderContract`` and subclass it in your tests; see
:mod:`segforge.testing.contracts`. ``FakePlugins`` (:mod:`segforge.testing.fake_plugins`) makes a
plugin look pip-installed to segforge's plugin manager without installing it. Importing this
package imports pytest, which is why ``import segforge`` never imports it.
"""

from segforge.testing.contracts import NetworkBuilderContract, NetworkCase, make_case
from segforge.testing.fake_plugins import FakeDistribution, FakePlugins

__all__ = ["FakeDistribution", "FakePlugins", "NetworkBuilderContract", "NetworkCase", "make_case"]
