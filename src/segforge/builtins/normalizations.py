"""Builtin plugin ``builtin.normalizations``: registers ``zscore``, ``ct``, ``none`` and ``rescale_0_1``.

The schemes live in :mod:`segforge.preprocessing.normalization`; this module only registers
them, through the same hook a third-party normalization plugin implements.
"""

from __future__ import annotations

from segforge.hookspecs import hookimpl
from segforge.preprocessing.normalization import BUILTIN_NORMALIZATIONS


@hookimpl
def segforge_register_normalizations(registry) -> None:  # noqa: ANN001 - RegistrarView, kept import-free
    for scheme in BUILTIN_NORMALIZATIONS:
        registry.add(scheme)
