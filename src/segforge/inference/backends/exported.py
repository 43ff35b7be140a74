"""Networks exported to ONNX once per model and run by ONNX Runtime or OpenVINO, checked against torch first.

Export (``torch.onnx.export`` with a dynamic batch axis) takes tens of seconds, so the file is
cached under ``$SEGFORGE_CACHE/onnx`` (default ``~/.cache/segforge/onnx``), named by a
hash of the network's class, weights and input shape: the next run of the same model opens
it directly. Before a backend answers any tile, the first real batch also goes through the
torch network and the two outputs are compared (:func:`parity_problem`): where they differ
beyond the parity bar, or where exporting or running fails, a :class:`BackendFallbackWarning`
says why and torch answers from then on. Both runtimes run fp32 (OpenVINO is told so: on
CPUs with native bf16 it would otherwise pick bf16 itself).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segforge.atomic import atomic_path
from segforge.errors import UsageError
from segforge.settings import cache_root

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

#: the parity bar: argmax agreement with torch on the first real batch, and the largest logit difference
MIN_AGREEMENT = 0.999
MAX_ABS_DIFF = 1e-3
EXTRA = {"onnxruntime": "onnx", "openvino": "openvino"}


class BackendFallbackWarning(UserWarning):
    """An exported backend was asked for but failed or disagreed with torch; torch predicts instead."""


def cache_dir() -> Path:
    return cache_root() / "onnx"


def model_key(net: nn.Module, input_shape: tuple[int, ...]) -> str:
    """Hash of what the exported graph depends on: class, weights, input shape (without batch), torch version."""
    import torch

    digest = hashlib.sha256(f"{type(net).__qualname__}|{list(input_shape)}|{torch.__version__}".encode())
    for name, tensor in net.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


class _FirstOutput:
    """Wraps a network so the exported graph has one output (deep supervision returns a list)."""

    @staticmethod
    def wrap(net: nn.Module) -> nn.Module:
        import torch

        class FirstOutput(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.net = net

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                out = self.net(x)
                return out[0] if isinstance(out, (list, tuple)) else out

        return FirstOutput().eval()


def export_onnx(net: nn.Module, example: torch.Tensor) -> Path:
    """The cached ONNX file of ``net`` for inputs shaped like ``example`` (any batch size); exported if missing."""
    import torch

    path = cache_dir() / f"{model_key(net, tuple(example.shape[1:]))}.onnx"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with atomic_path(path, suffix=".onnx") as tmp, contextlib.redirect_stdout(io.StringIO()):
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                batch = torch.export.Dim("batch", min=1, max=4096)
                torch.onnx.export(
                    _FirstOutput.wrap(net), (example[:1].contiguous(),), str(tmp), dynamo=True, external_data=False,
                    input_names=["x"], output_names=["logits"], dynamic_shapes=({0: batch},),
                )  # fmt: skip
    finally:
        quiet.setLevel(level)
    return path


def _import_runtime(runtime: str) -> Any:
    try:
        return __import__(runtime)
    except ImportError:
        raise UsageError(
            f"backend '{runtime}' needs the {runtime} package",
            hint=f"pip install 'segforge[{EXTRA[runtime]}]', or choose --backend torch",
        ) from None


def open_runtime(runtime: str, onnx_file: Path, threads: int) -> Any:
    """A callable numpy ``[B, C_in, *patch]`` -> numpy logits running ``onnx_file`` in ``runtime``."""
    module = _import_runtime(runtime)
    if runtime == "onnxruntime":
        options = module.SessionOptions()
        options.intra_op_num_threads = threads
        session = module.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        return lambda x: session.run(None, {"x": x})[0]
    core = module.Core()
    config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"}
    compiled = core.compile_model(core.read_model(str(onnx_file)), "CPU", config)
    output = compiled.output(0)
    return lambda x: compiled(x)[output]


def parity_problem(out: torch.Tensor, ref: torch.Tensor) -> str | None:
    """Why ``out`` may not stand in for ``ref`` (torch's logits), or None when it may."""
    if out.shape != ref.shape:
        return f"output shape {list(out.shape)} instead of {list(ref.shape)}"
    diff = float((out.float() - ref.float()).abs().max())
    agreement = float((out.argmax(1) == ref.argmax(1)).float().mean())
    if agreement < MIN_AGREEMENT or diff > MAX_ABS_DIFF * max(1.0, float(ref.abs().max())):
        return f"differs from torch (argmax agreement {agreement:.4%}, largest logit difference {diff:.2g})"
    return None


class ExportedForward:
    """``net`` run by ONNX Runtime or OpenVINO; torch where that fails or disagrees (warned once)."""

    def __init__(self, net: nn.Module, runtime: str) -> None:
        _import_runtime(runtime)  # a missing extra is the user's to fix: one line, before any case
        self.net, self.runtime = net, runtime
        self.run: Any = None
        self.failed: str | None = None

    def __call__(self, x: torch.Tensor) -> Any:
        import torch

        if self.failed is not None:
            return self.net(x)
        first = self.run is None
        try:
            if first:
                self.run = open_runtime(self.runtime, export_onnx(self.net, x), torch.get_num_threads())
            out = torch.from_numpy(self.run(x.detach().cpu().numpy()))
        except Exception as exc:  # noqa: BLE001 - any export/runtime failure falls back to torch
            return self._fall_back(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}", x)
        if first:  # the check is against plain fp32 torch, whatever autocast the caller runs under
            with torch.autocast(x.device.type, enabled=False), torch.no_grad():
                ref = self.net(x)
            ref = ref[0] if isinstance(ref, (list, tuple)) else ref
            problem = parity_problem(out, ref)
            if problem is not None:
                self.failed = problem
                self._warn(problem)
                return ref
        return out

    def _fall_back(self, reason: str, x: torch.Tensor) -> Any:
        self.failed = reason
        self._warn(reason)
        return self.net(x)

    def _warn(self, reason: str) -> None:
        warnings.warn(f"backend {self.runtime} not used ({reason}); predicting with torch",
                      BackendFallbackWarning, stacklevel=3)  # fmt: skip
