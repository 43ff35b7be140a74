"""Moved to :mod:`segforge.artifacts.run_dir`: run-folder naming and manifests are read by inference and
evaluation too. This old name is the same module object (monkeypatching either patches both)
until every importer uses the new one."""

import sys

from segforge.artifacts import run_dir as _moved

sys.modules[__name__] = _moved
