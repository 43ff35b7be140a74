"""3x3x3 convolutions by Winograd's minimal filtering F(4x4x4, 3x3x3) at fp32 CPU inference.

Why: on a CPU without native bf16 the U-Net's direct convolutions already run at the vector
units' FMA peak (nnU-Net's CT network: ~5 of ~5.7 s per 96x160x128 tile on 2 AVX2 cores), so a
faster forward pass needs fewer multiplications, not faster ones. Winograd's algorithm gets a
4x4x4 block of outputs from a 6x6x6 block of inputs with 216 products per channel pair instead
of 27 * 64 = 1728: the layer becomes 216 matrix products ``(blocks, C_in) @ (C_in, C_out)``
(torch.bmm, at the CPU's GEMM rate) between two linear transforms. Measured per layer (AVX2,
2 cores, fp32): 64->64 at 96x80x64 0.51 -> 0.27 s, 128->64 0.99 -> 0.51 s, 256->128 at 48x40x32
0.49 -> 0.15 s, 512->256 at 24x20x16 0.24 -> 0.05 s.

The transforms are short sums over overlapping strided blocks: as torch operations they are a
dozen passes over memory each and cost more than they save; as one loop per block they are
cheap. They live in ``winograd.c`` (plain C, no torch headers), which is compiled once per
machine with the system C compiler (~0.3 s, ``-O3`` plus AVX2/FMA where the CPU has them) into
segforge's cache (``$SEGFORGE_CACHE/kernels``) and loaded with ctypes. Without a C compiler, or
if building fails, the direct convolution is used (logged once), as with ``SEGFORGE_WINOGRAD=0``.

Numerics: the transforms' constants (1/4, 1/6, 1/24, 8, ...) round more than the direct sum:
~3e-5 of a layer's output range instead of ~1e-6. On the CT benchmark's trained network the
argmax is unchanged on a full tile; ``benchmarks/predict.py`` reports the agreement with nnU-Net.

Applies to ``Conv3d`` with kernel 3, stride 1, padding 1, no dilation or groups, channel counts
divisible by 8 and at least :data:`MIN_MACS` multiply-adds, at eager fp32 CPU inference (not
under autocast: bf16 direct convolutions are already twice as fast). Memory stays bounded: the
layer runs in slabs of block rows whose transforms hold at most :data:`SLAB_ELEMENTS` each.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import math
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import cast

import torch
from torch import nn

from segforge.hardware import cpu_flags
from segforge.networks.cpu_inference import eager_cpu_inference
from segforge.settings import cache_root

log = logging.getLogger(__name__)

#: environment switch: "0" keeps every convolution direct
ENV = "SEGFORGE_WINOGRAD"
#: smallest direct cost (multiply-adds per sample) worth the transforms
MIN_MACS = 1_000_000_000
#: transformed elements per slab, in or out (16 MB of fp32): small beside the feature maps
SLAB_ELEMENTS = 4 * 1024 * 1024
CHANNEL_BLOCK = 8  # CB in winograd.c
SOURCE = Path(__file__).with_name("winograd.c")

# G (6x3), the filter transform of F(4, 3)
_G = (
    (1 / 4, 0.0, 0.0),
    (-1 / 6, -1 / 6, -1 / 6),
    (-1 / 6, 1 / 6, -1 / 6),
    (1 / 24, 1 / 12, 1 / 6),
    (1 / 24, -1 / 12, 1 / 6),
    (0.0, 0.0, 1.0),
)


def _compiler() -> str | None:
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")


def _flags() -> list[str]:
    flags = ["-O3", "-fPIC", "-shared", "-pthread"]
    if platform.machine().lower() in ("x86_64", "amd64") and {"avx2", "fma"} <= cpu_flags():
        flags += ["-mavx2", "-mfma"]
    return flags


def loaded_openmp_runtime() -> Path | None:
    """The GNU OpenMP runtime (libgomp) this process has loaded (torch's, on Linux builds), if any.

    The transforms are linked against it, so that they run on torch's worker threads: threads of
    their own would share the cores with torch's workers, which spin-wait for a while after each
    parallel region (measured on 2 cores: Winograd layers 1.6x slower; a CT tile 4.6 s on POSIX
    threads, 3.7 s on torch's pool).
    """
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    for line in maps.splitlines():
        path = line.split()[-1] if line.split() else ""
        if os.path.basename(path).startswith("libgomp") and Path(path).is_file():
            return Path(path)
    return None


def _build_commands(compiler: str, built: Path, obj: Path, runtime: Path | None) -> list[list[str]]:
    """Compile and link ``winograd.c``: with OpenMP against ``runtime`` when given, else with POSIX threads."""
    flags = _flags()
    if runtime is None:
        return [[compiler, *flags, str(SOURCE), "-o", str(built)]]
    compile_flags = [f for f in flags if f != "-shared"]
    return [
        [compiler, *compile_flags, "-fopenmp", "-c", str(SOURCE), "-o", str(obj)],
        # no -fopenmp at the link: it would add the compiler's own libgomp; -z defs: nothing left unresolved
        [compiler, "-shared", "-pthread", "-Wl,-z,defs", str(obj), str(runtime), "-o", str(built)],
    ]


def build(cache_dir: Path | None = None, runtime: Path | None = None) -> Path:
    """Compile ``winograd.c`` into the cache (once per source, compiler, flags and runtime) and return the library."""
    compiler = _compiler()
    if compiler is None:
        raise FileNotFoundError("no C compiler (cc, gcc or clang; or $CC)")
    source = SOURCE.read_bytes()
    parts = [compiler, *_flags(), str(runtime or "pthreads")]
    key = hashlib.sha256(source + "\0".join(parts).encode()).hexdigest()[:16]
    folder = (cache_dir or cache_root()) / "kernels"
    library = folder / f"winograd-{key}.so"
    if library.exists():
        return library
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:  # built aside, then renamed: never half-written
        built = Path(tmp) / library.name
        for command in _build_commands(compiler, built, Path(tmp) / "winograd.o", runtime):
            subprocess.run(command, check=True, capture_output=True, timeout=120)
        os.replace(built, library)
    return library


def _load(runtime: Path | None) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(build(runtime=runtime)))
    size, ptr = ctypes.c_long, ctypes.c_void_p
    lib.winograd_input.argtypes = [ptr, ptr, *[size] * 6, ctypes.c_int]
    lib.winograd_output.argtypes = [ptr, ptr, ptr, *[size] * 6, ctypes.c_int]
    lib.winograd_input.restype = lib.winograd_output.restype = None
    return lib


@functools.cache
def _library() -> ctypes.CDLL | None:
    """The kernels: on torch's OpenMP pool where that runtime is found and the build works, else on POSIX threads."""
    runtime = loaded_openmp_runtime()
    for candidate in ([runtime] if runtime is not None else []) + [None]:
        try:
            return _load(candidate)
        except (OSError, subprocess.SubprocessError) as exc:
            detail = (getattr(exc, "stderr", b"") or b"").decode(errors="replace")
            kind = f"with OpenMP ({candidate})" if candidate else "with POSIX threads"
            log.info("Winograd kernels %s unavailable: %s %s", kind, exc, detail)
    log.info("Winograd convolutions unavailable, direct ones used")
    return None


def available() -> bool:
    """Not switched off (``SEGFORGE_WINOGRAD=0``) and the kernels build and load here."""
    return os.environ.get(ENV, "1").strip() != "0" and _library() is not None


@functools.cache
def _filter_transform() -> torch.Tensor:
    """G x G x G as one ``(216, 27)`` matrix (float64 products, stored fp32)."""
    g = torch.tensor(_G, dtype=torch.float64)
    return torch.einsum("ia,jb,kc->ijkabc", g, g, g).reshape(216, 27).float()


def transformed_weight(conv: nn.Conv3d) -> torch.Tensor:
    """G g G^T for every channel pair, ``(216, C_in, C_out)``: one small matrix product per call.

    Not kept between calls: the transformed weights are 8x the weights (~0.75 GB for nnU-Net's CT
    network, which raised the peak above nnU-Net's), and recomputing them costs ~1 % of the layer.
    """
    weight = conv.weight.detach()
    c_out, c_in = weight.shape[:2]
    taps = weight.permute(2, 3, 4, 1, 0).reshape(27, c_in * c_out)  # (tap, C_in x C_out)
    return torch.mm(_filter_transform(), taps).view(216, c_in, c_out)


def eligible(conv: nn.Module, x: torch.Tensor) -> bool:
    """Whether :func:`conv3d` may compute ``conv(x)`` by Winograd (see the module docstring)."""
    if not isinstance(conv, nn.Conv3d) or x.dim() != 5 or x.dtype != torch.float32:
        return False
    if tuple(conv.kernel_size) != (3, 3, 3) or tuple(conv.stride) != (1, 1, 1) or tuple(conv.padding) != (1, 1, 1):
        return False
    if tuple(conv.dilation) != (1, 1, 1) or conv.groups != 1 or conv.padding_mode != "zeros":
        return False
    if conv.weight.dtype != torch.float32 or conv.in_channels % CHANNEL_BLOCK or conv.out_channels % CHANNEL_BLOCK:
        return False
    if torch.is_autocast_enabled("cpu") or not eager_cpu_inference(x):
        return False
    return 27 * conv.in_channels * conv.out_channels * math.prod(x.shape[2:]) >= MIN_MACS


def conv3d(conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)``: by Winograd where :func:`eligible` and :func:`available`, else the module itself."""
    if eligible(conv, x) and available():
        return winograd_conv3d(cast("nn.Conv3d", conv), x)
    return conv(x)


def winograd_conv3d(conv: nn.Conv3d, x: torch.Tensor) -> torch.Tensor:
    """The convolution, sample by sample, in slabs of 4-voxel block rows along the first axis."""
    lib = _library()
    if lib is None:
        raise RuntimeError("the Winograd kernels are not available here")
    u = transformed_weight(conv)
    bias = None if conv.bias is None else conv.bias.detach().contiguous()
    x = x.contiguous()
    n, c_in, depth, height, width = x.shape
    c_out = conv.out_channels
    blocks_d, per_row = -(-depth // 4), -(-height // 4) * -(-width // 4)
    rows = max(1, SLAB_ELEMENTS // (216 * per_row * max(c_in, c_out)))
    out = torch.empty((n, c_out, depth, height, width), dtype=x.dtype)
    threads = torch.get_num_threads()
    sizes = (depth, height, width)
    most = min(rows, blocks_d) * per_row  # blocks in the largest slab; its buffers serve every slab
    v_flat, m_flat = torch.empty(216 * most * c_in, dtype=x.dtype), torch.empty(216 * most * c_out, dtype=x.dtype)
    bias_ptr = None if bias is None else bias.data_ptr()
    for i in range(n):
        for first in range(0, blocks_d, rows):
            last = min(blocks_d, first + rows)
            blocks = (last - first) * per_row
            v = v_flat[: 216 * blocks * c_in].view(216, blocks, c_in)
            m = m_flat[: 216 * blocks * c_out].view(216, blocks, c_out)
            lib.winograd_input(x[i].data_ptr(), v.data_ptr(), c_in, *sizes, first, last, threads)
            torch.bmm(v, u, out=m)
            lib.winograd_output(m.data_ptr(), bias_ptr, out[i].data_ptr(), c_out, *sizes, first, last, threads)
    return out
