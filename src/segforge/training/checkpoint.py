"""Moved to :mod:`segforge.artifacts.checkpoint`: inference and evaluation read checkpoints too, so the
format lives below all three. This old name is the same module object (monkeypatching either
patches both) until every importer uses the new one."""

import sys

from segforge.artifacts import checkpoint as _moved

sys.modules[__name__] = _moved
