"""Sliding-window prediction of a whole image with one network or an ensemble (folds).

The image is cut into overlapping tiles (:mod:`.tiling`), each tile is predicted (with
optional mirroring, :mod:`.mirroring`, and by every network of the ensemble), weighted by the
Gaussian importance map (:mod:`.gaussian`) and added into one preallocated logits
accumulator; dividing by the accumulated weights gives the blended logits. The arithmetic is
nnU-Net v2's ``predict_sliding_window_return_logits``; what differs is cost:

- averaging folds and flips *per tile* before accumulating is the same weighted mean as
  nnU-Net's per-fold volumes averaged afterwards, with one accumulator instead of two;
- the accumulator is float32 on the CPU (exact, and faster than fp16 arithmetic there; nnU-Net
  uses fp16 on the CPU too, which costs it precision at image corners and time per tile) and
  float16 on CUDA (nnU-Net's choice: half the memory, the map scaled by 10 and floored so
  weighted logits stay normal fp16 numbers); float16 can also be asked for on the CPU to
  halve the memory of many-class predictions;
- tiles (and their flips) share a forward pass up to ``max_batch_voxels`` input voxels, which
  helps small patches; input tiles are copied into one reused buffer;
- on the CPU, freed feature maps stay in the heap between tiles (:mod:`.allocator`), which
  removes most page-fault time, and on CPUs with native bf16 the forward pass runs under
  bfloat16 autocast by default (``precision="fp32"`` for nnU-Net's arithmetic);
- ``compile=True`` runs each network through ``torch.compile`` (:mod:`.compiled`): fused
  norm + activation and packed weights, ~1.25x per fp32 forward pass on the CPU, paid for by a
  one-time compile;
- tiles whose input is constant (air around a body in CT, the zero background around a
  brain) go through the network once per distinct value, not once per tile
  (:mod:`.constant_tiles`): the output for them is the same by construction.

Works with any ``nn.Module`` mapping ``[B, C_in, *patch]`` to ``[B, C_out, *patch]`` logits
(a list/tuple output, as deep supervision gives, uses its first element).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from segforge.errors import SegforgeError, UsageError
from segforge.hardware import native_bf16
from segforge.inference.allocator import mapped_zeros, retain_freed_memory
from segforge.inference.backends import check_backend
from segforge.inference.backends.auto import BackendRun
from segforge.inference.constant_tiles import ConstantTileCache
from segforge.inference.gaussian import gaussian_tensor
from segforge.inference.mirroring import check_mirror_axes, mirror_combinations, tensor_axes
from segforge.inference.tiling import check_step_size, padding_for, tile_starts, unpad_slices

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

Precision = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: one forward pass holds at most this many input voxels (tiles x flips x patch), unless a single tile is larger
DEFAULT_MAX_BATCH_VOXELS = 2**20
#: nnU-Net scales the map by 10 when accumulating in float16, so tiny weights stay representable
FP16_MAP_SCALE = 10.0
#: ... and floors it here: nnU-Net's floor (the smallest subnormal) leaves weighted logits at an image's corners
#: with one or two significant bits; 1e-3 keeps them normal fp16 numbers (weights only matter relative
#: to each other, and only corners of tiles are raised)
FP16_MAP_FLOOR = 1e-3
ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class SlidingWindowSettings:
    """How to tile and predict. ``mirror_axes`` are spatial patch axes (0-based); None: no mirroring.

    ``precision`` is the forward pass' autocast: ``fp32`` (none), ``bf16`` (CPU or CUDA),
    ``fp16`` (CUDA), ``auto`` = fp16 on CUDA (nnU-Net), bf16 on CPUs with native bf16, else fp32.
    ``accumulator_dtype`` None: float16 on CUDA, float32 on the CPU. ``compile``: forward passes
    through ``torch.compile`` (falls back to eager with a warning where compiling fails).
    ``reuse_constant_tiles``: constant input tiles are predicted once (see :mod:`.constant_tiles`).
    ``backend``: ``torch`` (eager), ``compiled`` (same as ``compile=True``), ``onnxruntime``,
    ``openvino`` or ``auto`` (:mod:`.backends`); ``expected_evaluations`` informs ``auto``.
    """

    patch_size: tuple[int, ...]
    step_size: float = 0.5
    mirror_axes: tuple[int, ...] | None = None
    use_gaussian: bool = True
    precision: Precision = "auto"
    accumulator_dtype: Literal["float32", "float16"] | None = None
    max_batch_voxels: int = DEFAULT_MAX_BATCH_VOXELS
    reuse_memory: bool = True
    compile: bool = False
    #: a tile whose input is one constant value per channel (air in CT after clipping, zero padding,
    #: the background outside a brain mask) gives the same logits wherever it lies: predict it once
    reuse_constant_tiles: bool = True
    #: where forward passes run (:mod:`.backends`): torch, compiled, onnxruntime, openvino, or auto
    backend: str = "torch"
    #: tile evaluations (tiles x flips x networks) the run is expected to do; what ``auto`` weighs setup against
    expected_evaluations: int | None = None

    def __post_init__(self) -> None:
        check_step_size(self.step_size)
        check_backend(self.backend)
        if self.precision not in PRECISIONS:
            raise UsageError(f"unknown precision '{self.precision}'", hint=f"choose one of {', '.join(PRECISIONS)}")
        object.__setattr__(self, "patch_size", tuple(int(p) for p in self.patch_size))
        object.__setattr__(self, "mirror_axes", check_mirror_axes(self.mirror_axes, len(self.patch_size)))


def _first_output(out: Any) -> torch.Tensor:
    """The full-resolution logits of a network's output (deep supervision returns a list)."""
    return out[0] if isinstance(out, (list, tuple)) else out


def cpu_has_native_bf16() -> bool:
    """Whether ``auto`` may pick bf16 here: native bf16 (AVX512-BF16 or AMX) and ``SEGFORGE_DISABLE_BF16`` unset.

    Elsewhere oneDNN emulates bf16 and autocast can be slower than fp32, so ``auto`` keeps fp32.
    """
    return native_bf16()


def resolve_precision(precision: Precision, device: torch.device) -> Any:
    """The autocast dtype for ``precision`` on ``device`` (None for plain fp32).

    ``auto``: fp16 on CUDA (nnU-Net's choice); bf16 on CPUs with native bf16 (2x the fp32 conv
    rate; argmax agreement with fp32 99.99 % on hippocampus, Dice unchanged to 4 digits, see
    docs/prediction.md), else fp32.
    """
    import torch

    if precision == "auto":
        if device.type == "cuda":
            precision = "fp16"
        else:
            precision = "bf16" if cpu_has_native_bf16() else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise UsageError("fp16 autocast needs a CUDA device", hint="use --precision bf16 or fp32 on the CPU")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


class SlidingWindowPredictor:
    """Predicts whole images tile by tile with one or several networks (their logits are averaged)."""

    def __init__(
        self,
        networks: nn.Module | Sequence[nn.Module],
        settings: SlidingWindowSettings,
        device: torch.device | str = "cpu",
    ) -> None:
        import torch

        self.networks = [networks] if isinstance(networks, torch.nn.Module) else list(networks)
        if not self.networks:
            raise ValueError("at least one network is needed")
        self.settings = settings
        self.device = torch.device(device)
        self.autocast_dtype = resolve_precision(settings.precision, self.device)
        self.flips = mirror_combinations(settings.mirror_axes)
        for net in self.networks:
            net.to(self.device).eval()
        self.constant_tiles = ConstantTileCache(enabled=settings.reuse_constant_tiles)
        self._passes, self._keeping = 0, False
        self._heap: contextlib.ExitStack | None = None  # this image's, while predict_logits runs
        self._pass_sums: torch.Tensor | None = None  # see _pass_sum
        backend = "compiled" if settings.compile and settings.backend == "torch" else settings.backend
        self.backend = BackendRun(backend, self.device.type, settings.expected_evaluations, self.autocast_dtype)
        self.forwards: list[Callable[[torch.Tensor], Any]] = (
            list(self.networks) if backend == "torch" else [self.backend.forward_for(net) for net in self.networks]
        )

    # -- public ---------------------------------------------------------------------------
    def predict_logits(self, image: np.ndarray | torch.Tensor, progress: ProgressFn | None = None) -> torch.Tensor:
        """Blended logits ``[C_out, *spatial]`` (float32 on the CPU unless an fp16 accumulator was asked for).

        ``image`` is ``[C_in, *spatial]``; images smaller than the patch are zero-padded (centred)
        and the logits cropped back. The result may be a view into a padded buffer.
        """
        import torch

        data = torch.as_tensor(image)
        if data.ndim != len(self.settings.patch_size) + 1 and data.ndim != len(self.settings.patch_size) + 2:
            raise ValueError(f"image of shape {list(data.shape)} does not fit patch {list(self.settings.patch_size)}")
        data = data.float() if data.dtype != torch.float32 else data
        with torch.inference_mode(), contextlib.ExitStack() as heap:
            self._heap = heap
            if self._passes:
                self._keep_heap()
            try:
                if self.device.type != "cuda":
                    return self._predict(data, progress, self.device)
                try:  # accumulate on the GPU; if that does not fit, on the CPU (as nnU-Net falls back)
                    return self._predict(data, progress, self.device)
                except torch.cuda.OutOfMemoryError:
                    torch.cuda.empty_cache()
                    return self._predict(data, progress, torch.device("cpu"))
            finally:
                self._heap, self._pass_sums = None, None

    def _keep_heap(self) -> None:
        """Keep freed memory in the heap (allocator) for the rest of this image, from the predictor's second pass on.

        The first forward pass of a predictor runs with glibc's defaults: it is where the libraries make
        their per-thread caches that live as long as the process (oneDNN and OpenMP buffers of a few MB).
        Made while the heap is kept, they land between the feature maps' blocks and split the holes the
        next tiles need, so the heap grows past them (measured: +0.25 GB on the CT benchmark).
        """
        heap = self._heap
        if heap is not None and self.settings.reuse_memory and self.device.type == "cpu" and not self._keeping:
            heap.enter_context(retain_freed_memory(True))
            heap.callback(setattr, self, "_keeping", False)
            self._keeping = True

    # -- internals --------------------------------------------------------------------------
    def _predict(self, data: torch.Tensor, progress: ProgressFn | None, results_device: torch.device) -> torch.Tensor:
        import torch.nn.functional as F

        patch = self.settings.patch_size
        pad = padding_for(tuple(data.shape[1:]), patch)
        if any(p != (0, 0) for p in pad):
            flat = [v for before_after in reversed(pad) for v in before_after]
            data = F.pad(data, flat, mode="constant", value=0.0)
        spatial = tuple(data.shape[1:])
        starts = list(tile_starts(spatial, patch, self.settings.step_size))
        acc = _Accumulator(spatial, patch, self.settings, results_device, compute_device=self.device)
        group = max(1, self.settings.max_batch_voxels // (math.prod(patch) * len(self.flips)))
        buffer = None
        for first in range(0, len(starts), group):
            batch = starts[first : first + group]
            buffer = self._gather(data, batch, buffer)
            logits = self.constant_tiles.predict(buffer[: len(batch)], self._predict_tiles)
            for i, start in enumerate(batch):
                acc.add(logits[i], start)
            del logits  # not alive through the next batch's forward pass (a block pinned in the kept heap)
            if progress is not None:
                progress(min(first + group, len(starts)), len(starts))
        return acc.result()[(slice(None), *unpad_slices(spatial, pad))]

    def _gather(self, data: torch.Tensor, starts: list[tuple[int, ...]], buffer: torch.Tensor | None) -> torch.Tensor:
        """Copy the tiles at ``starts`` into a reused ``[B, C_in, *patch]`` buffer on the device."""
        import torch

        patch = self.settings.patch_size
        shape = (len(starts), data.shape[0], *patch)
        if buffer is None or buffer.shape[0] < len(starts):
            buffer = torch.empty(shape, dtype=torch.float32, device=self.device)
        for i, start in enumerate(starts):
            buffer[i].copy_(data[(slice(None), *tile_region(start, patch))], non_blocking=True)
        return buffer

    def _predict_tiles(self, x: torch.Tensor) -> torch.Tensor:
        """Mean logits over networks and flips for a batch of tiles, float32 ``[B, C_out, *patch]``.

        Flips share a forward pass while the batch stays within ``max_batch_voxels``: small
        patches gain from the larger batch, large ones keep one tile per pass (bounded memory).
        """
        import torch

        per_pass = max(1, self.settings.max_batch_voxels // (len(x) * math.prod(self.settings.patch_size)))
        count = len(self.networks) * len(self.flips)
        total = None
        for net, forward in zip(self.networks, self.forwards, strict=True):
            for first in range(0, len(self.flips), per_pass):
                flips = self.flips[first : first + per_pass]
                inputs = [torch.flip(x, tensor_axes(axes)) if axes else x for axes in flips]
                batch = torch.cat(inputs) if len(inputs) > 1 else inputs[0]
                out = self._forward(forward, batch)
                _check_output(out, batch, net)
                for k, axes in enumerate(flips):
                    part = out[k * len(x) : (k + 1) * len(x)]
                    part = torch.flip(part, tensor_axes(axes)) if axes else part
                    if total is None and count > 1:
                        total = self._pass_sum(part)
                    elif total is None:  # never accumulate into the input buffer (a net may return its input)
                        total = part.float()
                        if total.untyped_storage().data_ptr() == x.untyped_storage().data_ptr():
                            total = total.clone()
                    else:
                        total.add_(part)
        return total.div_(count) if count > 1 else total

    def _pass_sum(self, first: torch.Tensor) -> torch.Tensor:
        """The sum over a tile's passes (flips, networks), started from ``first``, in a buffer reused for every tile.

        It lives through all of a tile's passes: made afresh, it would sit in a hole the feature maps
        left in the kept heap and split it (allocator); on the CPU it is mapped on its own, once per image.
        """
        import torch

        shape = (len(first), *first.shape[1:])
        buffer = self._pass_sums
        if buffer is None or buffer.shape[1:] != shape[1:] or len(buffer) < len(first):
            buffer = self._pass_sums = mapped_zeros(shape, torch.float32, first.device)
        total = buffer[: len(first)]
        total.copy_(first)
        return total

    def _forward(self, forward: Callable[[torch.Tensor], Any], x: torch.Tensor) -> torch.Tensor:
        import torch

        if self.autocast_dtype is None:
            ctx = contextlib.nullcontext()
        else:
            ctx = torch.autocast(self.device.type, dtype=self.autocast_dtype)
        with ctx:
            out = _first_output(forward(x))
        self._passes += 1  # per network pass (a mirrored tile is several): the heap is kept from the second on
        self._keep_heap()
        return out


def _check_output(out: Any, x: torch.Tensor, net: nn.Module) -> None:
    """A network (a plugin's, say) must map ``[B, C_in, *patch]`` to ``[B, C_out, *patch]``.

    Checked on every pass (a shape comparison): otherwise a wrong shape surfaces later as a
    broadcasting error inside the accumulator that names neither the network nor the fix.
    """
    import torch

    shape = list(out.shape) if isinstance(out, torch.Tensor) else None
    if shape is not None and len(shape) == x.ndim and shape[0] == x.shape[0] and shape[2:] == list(x.shape[2:]):
        return
    got = f"shape {shape}" if shape is not None else f"a {type(out).__name__}"
    raise SegforgeError(
        f"network {type(net).__name__} returned {got} for an input batch of shape {list(x.shape)}",
        hint="a segmentation network returns logits [batch, classes, *patch] (with deep supervision: a list, "
        "full resolution first); check its forward()",
    )


def tile_region(start: tuple[int, ...], patch: tuple[int, ...]) -> tuple[Any, ...]:
    """Index of a tile in the image's spatial axes; a leading extra start is a slice index (2D nets)."""
    extra = len(start) - len(patch)
    lead = tuple(start[:extra])
    return (*lead, *(slice(s, s + p) for s, p in zip(start[extra:], patch, strict=True)))


class _Accumulator:
    """Gaussian-weighted sum of tile logits and of the weights, allocated at the first tile."""

    def __init__(
        self, spatial: tuple[int, ...], patch: tuple[int, ...], settings: SlidingWindowSettings, device: Any,
        compute_device: Any,
    ) -> None:  # fmt: skip
        import torch

        self.spatial, self.patch, self.device = spatial, patch, device
        name = settings.accumulator_dtype or ("float16" if compute_device.type == "cuda" else "float32")
        self.dtype = getattr(torch, name)
        scale = FP16_MAP_SCALE if self.dtype == torch.float16 else 1.0
        if settings.use_gaussian:
            self.weight = gaussian_tensor(patch, device=device, dtype=self.dtype, value_scaling_factor=scale)
            if self.dtype == torch.float16:
                self.weight.clamp_(min=FP16_MAP_FLOOR)
        else:
            self.weight = torch.ones(patch, dtype=self.dtype, device=device)
        self.logits: torch.Tensor | None = None
        self.weights = mapped_zeros(spatial, self.dtype, device)  # long-lived: not in the kept heap (allocator)

    def add(self, logits: torch.Tensor, start: tuple[int, ...]) -> None:

        if self.logits is None:
            self.logits = mapped_zeros((logits.shape[0], *self.spatial), self.dtype, self.device)
        region = tile_region(start, self.patch)
        logits = logits.to(self.device).mul_(self.weight)  # weighted in the logits' precision, then accumulated
        self.logits[(slice(None), *region)] += logits
        self.weights[region] += self.weight

    def result(self) -> torch.Tensor:
        import torch

        if self.logits is None:
            raise ValueError("no tile was predicted")
        torch.div(self.logits, self.weights, out=self.logits)
        if self.dtype == torch.float16 and bool(torch.isinf(self.logits).any()):
            raise FloatingPointError("float16 logits overflowed while blending tiles; use a float32 accumulator")
        return self.logits


def predict_sliding_window(
    networks: nn.Module | Sequence[nn.Module],
    image: np.ndarray | torch.Tensor,
    patch_size: Sequence[int],
    *,
    step_size: float = 0.5,
    mirror_axes: Sequence[int] | None = None,
    device: torch.device | str = "cpu",
    precision: Precision = "auto",
    **kwargs: Any,
) -> torch.Tensor:
    """One-call form of :class:`SlidingWindowPredictor` for any ``nn.Module`` (or a list: an ensemble)."""
    settings = SlidingWindowSettings(
        tuple(patch_size), step_size=step_size, mirror_axes=tuple(mirror_axes) if mirror_axes else None,
        precision=precision, **kwargs,
    )  # fmt: skip
    return SlidingWindowPredictor(networks, settings, device).predict_logits(image)
