"""Trained models as files you can hand on: model packages and the other sources ``-m`` accepts.

:mod:`.model_source` turns whatever ``predict -m`` / ``Predictor.from_package`` /
``Predictor.from_nnunet`` were given (a package zip, an nnU-Net v2 model folder, a run folder)
into the one folder layout segforge's predictor loads; the ``package_*`` modules write, verify
and unpack packages. This sits above inference and the nnU-Net import, which it composes; the
checkpoint format and run-folder naming it reads live below in :mod:`segforge.artifacts`.
"""
