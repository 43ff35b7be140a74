"""A memory model for one training step that works for any ``nn.Module`` any builder makes.

Instead of nnU-Net's per-architecture feature-map formulas and reference constants, the
network is built on PyTorch's meta device (shapes only, no storage) and run once on a meta
input of shape ``[batch, in_channels, *patch]``. Forward hooks on every leaf module add up
the bytes of their outputs: these are, to a first approximation, the activations autograd
keeps for the backward pass. Parameters are counted four times in fp32 (weights, gradients
and two optimizer buffers, i.e. Adam; SGD with momentum needs one less).

The approximation, and why it is good enough for choosing patch and batch sizes:

* outputs of in-place modules (e.g. ``LeakyReLU(inplace=True)``) share storage with their
  input and are counted once;
* tensors made outside modules (``torch.cat`` of skips, residual additions) and the
  allocator's workspace are not counted, while some counted outputs are not really kept
  (a conv output that only feeds an in-place norm); these roughly cancel - the test suite
  checks the estimate against the bytes autograd actually saves in a real CPU step;
* dtype is the module's real dtype (fp32 unless the builder says otherwise); mixed
  precision roughly halves the activation part, which callers may account for.

Building and running on meta allocates no tensor memory and takes well under a second even
for nnU-Net's 31 M-parameter 3D network.
"""

from __future__ import annotations

from typing import Any

FP32_BYTES = 4
#: weights + gradients + two optimizer buffers
PARAM_COPIES = 4


def _tensors(obj: Any):
    """Tensors inside a module output (a tensor, or nested lists/tuples/dicts of them)."""
    import torch

    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _tensors(item)


def _nbytes(t: Any) -> int:
    return t.numel() * t.element_size()


def build_on_meta(builder: Any, params: Any, in_channels: int, num_classes: int, deep_supervision: bool):
    """The builder's network with meta tensors only (moved there if the builder ignores the device context)."""
    import torch

    with torch.device("meta"):
        network = builder.build(params, in_channels, num_classes, deep_supervision)
    if any(not p.is_meta for p in network.parameters()):
        network = network.to("meta")
    return network


def activation_bytes(network: Any, input_shape: tuple[int, ...]) -> int:
    """Bytes of every leaf module's output for one forward pass on a meta input of ``input_shape``."""
    import torch

    total = 0

    def hook(module: Any, inputs: Any, output: Any) -> None:
        nonlocal total
        in_ids = {id(t) for t in _tensors(inputs)}
        total += sum(_nbytes(t) for t in _tensors(output) if id(t) not in in_ids)

    leaves = [m for m in network.modules() if next(m.children(), None) is None]
    handles = [m.register_forward_hook(hook) for m in leaves]
    dtype = next((p.dtype for p in network.parameters() if p.is_floating_point()), torch.float32)
    x = torch.empty(input_shape, device="meta", dtype=dtype)
    try:
        network.train()
        with torch.no_grad():  # shapes are what matter; skipping graph bookkeeping is faster
            network(x)
    finally:
        for handle in handles:
            handle.remove()
    return total + _nbytes(x)


def parameter_bytes(network: Any) -> int:
    """Trainable parameters x4 (weights, grads, 2 optimizer buffers); frozen params and buffers once."""
    trainable = sum(_nbytes(p) for p in network.parameters() if p.requires_grad)
    frozen = sum(_nbytes(p) for p in network.parameters() if not p.requires_grad)
    buffers = sum(_nbytes(b) for b in network.buffers())
    return PARAM_COPIES * trainable + frozen + buffers


def estimate_training_memory(
    builder: Any,
    params: Any,
    patch_size: tuple[int, ...],
    in_channels: int,
    num_classes: int,
    batch_size: int = 1,
) -> int:
    """Approximate bytes one training step of ``builder``'s network needs (see the module docstring)."""
    constraints = builder.constraints(params)
    deep_supervision = bool(getattr(constraints, "deep_supervision", True))
    network = build_on_meta(builder, params, in_channels, num_classes, deep_supervision)
    shape = (int(batch_size), int(in_channels), *(int(p) for p in patch_size))
    return int(activation_bytes(network, shape) + parameter_bytes(network))
