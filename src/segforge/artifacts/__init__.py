"""Trained models as files you can hand on: model packages and other model sources.

:mod:`.model_source` turns whatever ``-m`` / ``Predictor.from_package`` / ``Predictor.from_nnunet``
were given into the one folder layout segforge's predictor loads.
"""
