"""``--pretrained-weights``: start from another run's weights (nnU-Net's ``-pretrained_weights``).

Only tensors whose name and shape match are copied, so a network trained for other classes
still gives its encoder and decoder; the segmentation heads (``seg_layers``) are always left
as initialised, as nnU-Net does. Nothing else of the source run (optimizer, schedule) is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from segforge.errors import ConfigError


def _weights(path: Path) -> dict[str, Any]:
    from segforge.training.checkpoint import CheckpointError, load_checkpoint

    try:
        return load_checkpoint(path)["network_weights"]
    except CheckpointError:
        pass
    import torch

    try:  # a bare state dict saved with torch.save(model.state_dict())
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(
            f"{path}: cannot read pretrained weights ({type(exc).__name__})",
            hint="pass a segforge checkpoint_*.pt or a torch.save'd state_dict",
        ) from None
    if not isinstance(state, dict) or not all(hasattr(v, "shape") for v in state.values()):
        raise ConfigError(f"{path}: not a checkpoint or state_dict", hint="pass a segforge checkpoint_*.pt")
    return state


def load_pretrained_weights(network: nn.Module, path: str | Path) -> tuple[int, list[str]]:
    """Copy matching tensors from ``path`` into ``network``; returns (loaded count, skipped names)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--pretrained-weights {path}: file not found", hint="check the path")
    source = {k.removeprefix("_orig_mod."): v for k, v in _weights(path).items()}
    target = network.state_dict()
    update, skipped = {}, []
    for name, tensor in target.items():
        other = source.get(name)
        if other is not None and "seg_layers" not in name and tuple(other.shape) == tuple(tensor.shape):
            update[name] = other
        else:
            skipped.append(name)
    if not update:
        raise ConfigError(
            f"--pretrained-weights {path}: no tensor matches this network by name and shape",
            hint="pretrained weights must come from the same network architecture",
        )
    target.update(update)
    network.load_state_dict(target)
    return len(update), skipped
