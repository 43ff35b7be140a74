"""A network's forward pass compiled by ``torch.compile`` (inductor), with eager as the fallback.

Why: on the CPU, 81 % of a 3D U-Net's eager forward pass is oneDNN's convolution, which
already runs near the machine's fp32 peak; the rest is instance norm, leaky ReLU, layout
reorders and concatenation copies, each a separate pass over feature maps of hundreds of MB.
Inductor with ``freezing`` (the weights become constants) packs the convolution weights once
and fuses norm + activation into one generated kernel. Measured on a 96x160x128 tile of
nnU-Net's 3d_fullres CT network (2 cores, fp32): eager 6.4-6.6 s, compiled 5.0-5.3 s per pass,
logits within 6e-6 of eager, identical argmax. The price is a one-time compile when the first
tile is predicted (20-25 s with an empty kernel cache, ~12 s once the cache in
``TORCHINDUCTOR_CACHE_DIR`` holds the kernels), so it pays off for large patches and many
tiles, not for a handful of small ones - hence opt-in (``segforge predict --compile``).

Compiling needs a working C++ compiler on the CPU (Triton on CUDA). Where compiling fails for
any reason, the same call is answered by the eager network and a :class:`CompileFallbackWarning`
says why; from then on the network runs eagerly. An error that eager raises too (a genuine
problem of the network or its input) propagates unchanged.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn


class CompileFallbackWarning(UserWarning):
    """``--compile`` was asked for, but the network could not be compiled here; it runs eagerly."""


def inductor_settings(device_type: str) -> contextlib.AbstractContextManager[Any]:
    """Inductor's ``freezing`` on the CPU (weights packed once for oneDNN; inference only).

    Set around every call rather than through ``torch.compile(options=...)``: passed as an
    option, ``freezing`` did not take effect (measured: 6.1-6.4 s per tile, as without it) and
    it must not leak into other compiled code of the process (training compiles without it).
    """
    if device_type != "cpu":
        return contextlib.nullcontext()
    import torch._inductor.config as inductor_config

    return inductor_config.patch(freezing=True)


class CompiledForward:
    """Calls ``torch.compile(net)``; on a compile failure warns once and calls ``net`` from then on.

    Shapes: the first call compiles for its exact shape; a second batch size makes torch
    recompile once with a dynamic batch dimension (a patch's spatial size never changes).
    """

    def __init__(self, net: nn.Module, device_type: str = "cpu") -> None:
        import torch

        self.net = net
        self.device_type = device_type
        self.compiled: Any = torch.compile(net)
        self.failed: str | None = None

    def __call__(self, x: torch.Tensor) -> Any:
        if self.failed is not None:
            return self.net(x)
        try:
            with inductor_settings(self.device_type):
                return self.compiled(x)
        except Exception as exc:  # noqa: BLE001 - any compile failure falls back; eager re-raises real errors
            out = self.net(x)
            self.failed = _reason(exc)
            warnings.warn(
                f"could not compile the network ({self.failed}); predicting without --compile",
                CompileFallbackWarning,
                stacklevel=2,
            )
            return out


def _reason(exc: BaseException) -> str:
    """The first line of the innermost cause: compile errors wrap the compiler's message several times."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first[:200]}" if first else type(exc).__name__
