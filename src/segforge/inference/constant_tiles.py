"""Constant input tiles are predicted once: the rule, and the cache that applies it.

A network is a function of its input tile only: where it lies in the image is not an input.
So every tile whose input is one constant value per channel — CT air clipped to the lower
intensity percentile and normalised, zero padding, the background outside a brain mask set
to 0 by nonzero-mask normalisation — yields the same logits, and predicting each of them is
work whose result is already known. The cache runs the network (with all its flips and
folds) on the first tile of each distinct constant value and reuses those logits for the
rest. Nothing is approximated and no threshold is involved: a tile is reused only when its
minimum equals its maximum in every channel, and the reused logits are the ones the network
gave for that exact input (up to the last-bit differences a different batch composition can
cause in a convolution library). ``SlidingWindowSettings(reuse_constant_tiles=False)``
(``segforge predict --no-reuse-constant-tiles``) turns it off.

How much it saves is the share of constant tiles: none on tightly cropped MRI, much of a CT
whose field of view has air around the body (the counts are in :attr:`ConstantTileCache.stats`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: distinct constant values remembered (each costs one tile of logits); images have one or two
MAX_KEYS = 8


@dataclass
class TileStats:
    """How many tiles went through the network and how many were answered from the cache."""

    predicted: int = 0
    reused: int = 0


def constant_keys(x: torch.Tensor) -> list[tuple[float, ...] | None]:
    """Per tile of ``x`` ``[B, C, *patch]``: its per-channel value when the tile is constant, else None."""
    flat = x.flatten(2)
    low, high = flat.amin(dim=2), flat.amax(dim=2)
    constant = (low == high).all(dim=1).tolist()
    values = low.tolist()
    return [tuple(v) if c else None for v, c in zip(values, constant, strict=True)]


@dataclass
class ConstantTileCache:
    """Answers constant tiles from logits computed once per distinct value (see the module docstring)."""

    enabled: bool = True
    stats: TileStats = field(default_factory=TileStats)
    _logits: dict[tuple[float, ...], Any] = field(default_factory=dict)

    def predict(self, x: torch.Tensor, predict_tiles: Callable[[torch.Tensor], torch.Tensor]) -> list[Any]:
        """Logits ``[C_out, *patch]`` for each tile of ``x``; ``predict_tiles`` runs the networks on a batch.

        Reused logits are copies: the caller may scale them in place.
        """
        if not self.enabled:
            out = predict_tiles(x)
            self.stats.predicted += len(x)
            return list(out)
        keys = constant_keys(x)
        run, seen = [], set()
        for i, key in enumerate(keys):
            if key is None or (key not in self._logits and key not in seen):
                run.append(i)
                if key is not None:
                    seen.add(key)
        computed = predict_tiles(x if len(run) == len(x) else x[run]) if run else None
        self.stats.predicted += len(run)
        self.stats.reused += len(x) - len(run)
        fresh = {i: computed[j] for j, i in enumerate(run)} if computed is not None else {}
        for i in run:
            key = keys[i]
            if key is not None and key not in self._logits and len(self._logits) < MAX_KEYS:
                self._logits[key] = fresh[i].clone()
        out = []
        for i, key in enumerate(keys):
            if i in fresh:
                out.append(fresh[i])
            elif key in self._logits:
                out.append(self._logits[key].clone())
            else:  # a key first met earlier in this batch while the cache was full
                first = next(j for j in run if keys[j] == key)
                out.append(fresh[first].clone())
        return out
