"""segforge from Python: plan, train, predict and evaluate without the command line.

Everything here composes the modules the CLI uses (run lookup, model loading, the case
pipeline, evaluation), so a result from Python is the result ``segforge ...`` gives. The
page docs/python-api.md shows each call; its examples run in the tests.

>>> from segforge import Predictor                              # doctest: +SKIP
>>> Predictor.from_run(task=4).predict_folder("imagesTs", "preds")  # doctest: +SKIP
"""

from __future__ import annotations

from segforge.api.predictor import Predictor
from segforge.api.workflow import evaluate, plan_and_preprocess, train

__all__ = ["Predictor", "evaluate", "plan_and_preprocess", "train"]
