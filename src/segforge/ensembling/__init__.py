"""Ensembling: averaging the probabilities of several predictions of the same cases (``segforge ensemble``)."""

from segforge.ensembling.averaging import EnsembleResult, ensemble_folders

__all__ = ["EnsembleResult", "ensemble_folders"]
