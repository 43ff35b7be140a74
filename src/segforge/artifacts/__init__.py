"""The files a training run leaves that everything after it reads: the checkpoint format
(:mod:`.checkpoint`) and run-folder naming and manifests (:mod:`.run_dir`).

They sit below training, inference and evaluation, which all read them, so none of those
packages has to import another for a file format. Model packages built from these files are
in :mod:`segforge.packaging`.
"""
