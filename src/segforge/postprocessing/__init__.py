"""Postprocessing decided from cross-validation: keep only the largest connected component(s).

:mod:`.connected_components` holds the array operation, :mod:`.decision` the rule and its JSON
(``postprocessing.json``), :mod:`.crossval` collects the folds' validation predictions and
determines the rule for a trained model, :mod:`.apply` applies it to files and in ``predict``.
"""
