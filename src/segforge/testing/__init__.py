"""segforge's public test kit for plugin authors.

``from segforge.testing import NetworkBuilderContract`` (or ``LossComponentContract``,
``TrainerContract``) and subclass it in your tests; see :mod:`segforge.testing.contracts`,
:mod:`segforge.testing.loss_contract` and :mod:`segforge.testing.trainer_contract`.
``FakePlugins`` (:mod:`segforge.testing.fake_plugins`) makes a plugin look pip-installed to
segforge's plugin manager without installing it. Importing this package imports pytest,
which is why ``import segforge`` never imports it.
"""

from segforge.testing.contracts import NetworkBuilderContract, NetworkCase, make_case
from segforge.testing.fake_plugins import FakeDistribution, FakePlugins
from segforge.testing.loss_contract import LossCase, LossComponentContract, make_loss_case
from segforge.testing.trainer_contract import TrainerContract, make_trainer

__all__ = [
    "FakeDistribution",
    "FakePlugins",
    "LossCase",
    "LossComponentContract",
    "NetworkBuilderContract",
    "NetworkCase",
    "TrainerContract",
    "make_case",
    "make_loss_case",
    "make_trainer",
]
