"""segforge's public test kit for plugin authors.

``from segforge.testing import NetworkBuilderContract`` and subclass it in your tests; see
:mod:`segforge.testing.contracts`. Importing this package imports pytest, which is why
``import segforge`` never imports it.
"""

from segforge.testing.contracts import NetworkBuilderContract, NetworkCase, make_case

__all__ = ["NetworkBuilderContract", "NetworkCase", "make_case"]
