"""Where a network's forward pass runs during prediction: torch eager, torch compiled, ONNX Runtime, OpenVINO.

Every backend gives the sliding window the same thing: a callable mapping a ``[B, C_in, *patch]``
float32 tile batch to ``[B, C_out, *patch]`` logits. The choice changes speed, never the
result beyond the parity bar: the exported backends check themselves against torch on the
first real batch and fall back to torch with a warning where they disagree or fail
(:mod:`.exported`). ``auto`` times the eager pass on the first real batch and switches to the
backend whose known speed on this machine pays for its one-time cost over the passes still
to come (:mod:`.choice`); speeds measured in earlier runs are remembered.

| name | what | one-time cost |
|---|---|---|
| ``torch`` | eager PyTorch (with the precision's autocast) | none |
| ``compiled`` | ``torch.compile`` with inductor (:mod:`segforge.inference.compiled`) | a compile per process |
| ``onnxruntime`` | ONNX export + ONNX Runtime, fp32 (extra ``segforge[onnx]``) | an export per model, cached |
| ``openvino`` | the same ONNX file in OpenVINO, fp32 (extra ``segforge[openvino]``) | the export, cached; a compile |
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from segforge.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

BACKENDS = ("auto", "torch", "compiled", "onnxruntime", "openvino")
#: backends that run outside torch, in fp32 whatever the precision setting
EXPORTED = ("onnxruntime", "openvino")


def check_backend(name: str) -> str:
    if name not in BACKENDS:
        raise UsageError(f"unknown backend '{name}'", hint=f"choose one of {', '.join(BACKENDS)}")
    return name


def make_forward(name: str, net: nn.Module, device_type: str = "cpu") -> Any:
    """The forward callable of backend ``name`` for ``net`` (``auto`` is resolved by the caller)."""
    check_backend(name)
    if name == "torch":
        return net
    if name == "compiled":
        from segforge.inference.compiled import CompiledForward

        return CompiledForward(net, device_type)
    if name in EXPORTED:
        if device_type != "cpu":
            raise UsageError(f"backend '{name}' runs on the CPU only", hint="use --backend torch or compiled on GPUs")
        from segforge.inference.backends.exported import ExportedForward

        return ExportedForward(net, name)
    raise UsageError("backend 'auto' must be resolved before building forwards", hint="report this as a bug")
