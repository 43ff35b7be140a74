"""Reading nnU-Net v2 checkpoints (``checkpoint_*.pth``) without executing anything they contain.

nnU-Net saves its checkpoints with plain ``torch.save`` and loads them as full pickle (the
weights-only mode switched off): a checkpoint from a model zoo or a colleague can run any code on load. Here
they are read with ``weights_only=True``, which only rebuilds tensors and plain containers, plus
an explicit allow-list of the few numpy objects nnU-Net's trainer writes besides tensors (the
logged losses and pseudo-Dice values and ``_best_ema`` are numpy scalars: a numpy scalar is
pickled as ``numpy._core.multiarray.scalar`` applied to a ``numpy.dtype``; numpy 1.x wrote
``numpy.core.multiarray.scalar``).

Before unpickling, the file's globals are listed from the pickle opcodes alone
(``torch.serialization.get_unsafe_globals_in_checkpoint``); anything outside torch's own safe set
and :data:`ALLOWED_GLOBALS` is refused with one line naming the file and the global, so a
planted ``__reduce__`` payload is never called.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from segforge.errors import SegforgeError


class NnunetCheckpointError(SegforgeError):
    """An nnU-Net checkpoint is unreadable, or holds objects that are not plain data."""

    exit_code = 2


#: numpy globals nnU-Net checkpoints carry (logging, ``_best_ema``): name as pickled -> where it lives now
def _numpy_globals() -> dict[str, Any]:
    import numpy as np

    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import scalar  # type: ignore[no-redef]

    allowed: dict[str, Any] = {
        "numpy._core.multiarray.scalar": scalar,
        "numpy.core.multiarray.scalar": scalar,
        "numpy.dtype": np.dtype,
    }
    # numpy >= 1.25 pickles a dtype through its class (numpy.dtypes.Float64DType ...)
    for name in ("Float64DType", "Float32DType", "Float16DType", "Int64DType", "Int32DType", "BoolDType"):
        cls = getattr(getattr(np, "dtypes", None), name, None)
        if cls is not None:
            allowed[f"numpy.dtypes.{name}"] = cls
    return allowed


def allowed_global_names() -> list[str]:
    """The globals :func:`load_nnunet_checkpoint` accepts besides torch's own weights-only set."""
    return sorted(_numpy_globals())


def _refused(path: Path, names: list[str]) -> NnunetCheckpointError:
    shown = ", ".join(names[:3]) + (f" (+{len(names) - 3} more)" if len(names) > 3 else "")
    return NnunetCheckpointError(
        f"{path}: refused to load: the checkpoint contains the global {shown}, which is not plain data "
        "(loading it could run code)",
        hint="only load checkpoints from a source you trust with nnU-Net itself; segforge reads tensors, "
        "plain containers and numpy scalars only",
    )


def load_nnunet_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checkpoint's dict, read with ``weights_only=True`` and the numpy allow-list (nothing executed)."""
    import torch
    import torch.serialization as ser

    path = Path(path)
    if not path.is_file():
        raise NnunetCheckpointError(f"{path}: checkpoint not found", hint="check the fold folder and --checkpoint")
    allowed = _numpy_globals()
    try:
        found = ser.get_unsafe_globals_in_checkpoint(str(path))
    except Exception as exc:  # not a zip written by torch.save, truncated file
        raise _unreadable(path, exc) from None
    offending = sorted(g for g in found if g not in allowed)
    if offending:
        raise _refused(path, offending)
    safe = [(obj, name) for name, obj in allowed.items()]
    try:
        with ser.safe_globals(safe):
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # the weights-only unpickler refused something the scan did not list
        raise _unreadable(path, exc) from None
    if not isinstance(payload, dict) or "network_weights" not in payload:
        raise NnunetCheckpointError(
            f"{path}: not an nnU-Net v2 checkpoint (no 'network_weights')",
            hint="pass the folder nnU-Net v2 trained into (fold_N/checkpoint_final.pth)",
        )
    return payload


def _unreadable(path: Path, exc: Exception) -> NnunetCheckpointError:
    reason = " ".join(str(exc).split())[:200]
    return NnunetCheckpointError(
        f"{path}: not a readable checkpoint ({type(exc).__name__}: {reason})",
        hint="the file is truncated or not written by torch.save; copy it again from the nnU-Net results folder",
    )
