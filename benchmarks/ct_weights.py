"""Weights for nnU-Net's CT 3d_fullres network that segment the CT-like volumes (for ``predict.py`` (a)).

With random weights the three logits of a voxel differ by tiny amounts, so any rounding -
nnU-Net's float16 accumulator, bf16 autocast, another summation order - flips the argmax of
many voxels: the agreement then measures the weights' indecision, not the predictors. A
network trained for a few minutes on the same kind of data (air 0, body 1, organs 2) has
the margins a real model has, while its tensors, and so every timing, stay the same.

Training: nnU-Net's ``PlainConvUNet`` (the benchmark's exact network), crops of 16x64x64 from
four synthetic CT-like volumes (other seeds than the benchmark volume), batch 2, Adam 1e-3,
cross-entropy, ~150 iterations (about 3 minutes on 2 cores). The result is saved as a plain
state dict (``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

CROP = (16, 64, 64)
TRAIN_SHAPE = (48, 128, 128)


def ct_like_labels(shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A CT-like volume (normalized, ``[1, *shape]``) and its labels: 0 air, 1 body, 2 organs."""
    from predict import ct_like_case, ct_normalized

    hu, labels = ct_like_case(shape, seed)
    return ct_normalized(hu), labels.astype(np.int64)


def train_weights(net, seconds_limit: float = 600.0, iterations: int = 150, seed: int = 0) -> dict:  # noqa: ANN001
    """Train ``net`` in place on random crops; returns the state dict (also for the caller to save)."""
    import torch

    rng = np.random.default_rng(seed)
    volumes = [ct_like_labels(TRAIN_SHAPE, seed=100 + i) for i in range(4)]
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    net.train()
    started = time.perf_counter()
    for it in range(iterations):
        images, targets = [], []
        for _ in range(2):
            image, labels = volumes[rng.integers(len(volumes))]
            corner = [int(rng.integers(0, s - c + 1)) for s, c in zip(TRAIN_SHAPE, CROP, strict=True)]
            region = tuple(slice(c, c + n) for c, n in zip(corner, CROP, strict=True))
            images.append(image[(slice(None), *region)])
            targets.append(labels[region])
        x = torch.from_numpy(np.stack(images))
        y = torch.from_numpy(np.stack(targets))
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), y)
        loss.backward()
        optimizer.step()
        if it % 25 == 0 or it == iterations - 1:
            print(f"  weights: iteration {it}, loss {loss.item():.4f}", flush=True)
        if time.perf_counter() - started > seconds_limit:
            print(f"  weights: stopped after {it + 1} iterations ({seconds_limit:.0f} s)", flush=True)
            break
    net.eval()
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def trained_state(cache: Path, make_net) -> dict:  # noqa: ANN001
    """The trained state dict from ``cache``, training (and caching) it first when absent."""
    import torch

    if cache.is_file():
        return torch.load(cache, weights_only=True)
    torch.manual_seed(0)
    net = make_net()
    print(f"training the CT network's weights once (cached in {cache}) ...", flush=True)
    state = train_weights(net)
    tmp = cache.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(cache)
    return state
