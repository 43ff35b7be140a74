"""What a trained model is on disk, and how it travels: below training, inference and evaluation.

- :mod:`.checkpoint` and :mod:`.run_dir`: the checkpoint format and the run-folder layout that
  training writes and inference and evaluation read;
- :mod:`.model_source`: turns whatever ``-m`` / ``Predictor.from_package`` / ``Predictor.from_nnunet``
  were given into that run-folder layout;
- :mod:`.package_format`, :mod:`.package_export`, :mod:`.package_verify`, :mod:`.package_unpack`,
  :mod:`.requirements`, :mod:`.model_card`: model packages (``segforge export-model`` /
  ``install-model``), one zip a trained model is handed on in.
"""
