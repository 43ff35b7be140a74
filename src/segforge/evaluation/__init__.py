"""Evaluation: metrics per label (:mod:`.metrics`) and whole folders (:mod:`.evaluate_folder`)."""
