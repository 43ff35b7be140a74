"""The first forward pass of a run checks the network's output against what the loss expects.

A network comes from a plugin; if its ``build`` returns a module with the wrong number of
output channels, a wrong spatial size or the wrong deep-supervision structure, the loss
would fail deep inside torch with a traceback that names neither the network nor the plugin
(or, worse, broadcast silently). Checking the first output costs nothing (the forward pass
happens anyway) and turns the problem into one line that names the network, its plugin and
distribution, and the expectation that failed - the same wording the contract kit
(:mod:`segforge.testing.contracts`) uses, so a plugin author can reproduce it there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from segforge.errors import PluginError

_HINT = (
    "the network's build() must return a module whose output is [batch, num_classes, *patch] "
    "(with deep supervision: a tuple of such, full resolution first); "
    "run segforge.testing.NetworkBuilderContract on it, or fix or uninstall {who}"
)


def _who(entry: Any) -> str:
    origin = getattr(entry, "origin", None)
    if origin is None:
        return "the network's plugin"
    return origin.describe()


def _shape(value: Any) -> list[int] | str:
    shape = getattr(value, "shape", None)
    return list(shape) if shape is not None else type(value).__name__


def _fail(entry: Any, problem: str) -> PluginError:
    name = getattr(entry, "name", "?")
    return PluginError(f"network '{name}' from {_who(entry)}: {problem}", hint=_HINT.format(who=_who(entry)))


def _expected_shapes(data: Any, target: Any, num_classes: int) -> list[list[int]]:
    """[batch, classes, *spatial] per output, from the targets the loss will compare with."""
    targets = target if isinstance(target, (list, tuple)) else [target]
    batch = int(data.shape[0])
    return [[batch, num_classes, *(int(s) for s in t.shape[2:])] for t in targets]


def check_network_output(output: Any, data: Any, target: Any, num_classes: int, entry: Any) -> None:
    """Raise a one-line PluginError naming the network and plugin when ``output`` cannot be what the loss needs."""
    expected = _expected_shapes(data, target, num_classes)
    deep = isinstance(target, (list, tuple)) and len(expected) > 1
    if deep:
        if not isinstance(output, (list, tuple)):
            raise _fail(entry, f"returned a single output of shape {_shape(output)} with deep supervision on, "
                               f"expected a tuple of {len(expected)} outputs")  # fmt: skip
        if len(output) != len(expected):
            raise _fail(entry, f"returned {len(output)} deep-supervision outputs, expected {len(expected)}")
        outputs: Sequence[Any] = output
    else:
        if isinstance(output, (list, tuple)):
            raise _fail(entry, f"returned a {type(output).__name__} of {len(output)} outputs, expected one tensor of "
                               f"shape {expected[0]} (deep supervision is off, or the module has no "
                               "deep_supervision_scales attribute)")  # fmt: skip
        outputs = [output]
    for index, (out, want) in enumerate(zip(outputs, expected, strict=False)):
        got = _shape(out)
        if got == want:
            continue
        what = "output" if not deep else f"deep-supervision output {index}"
        if isinstance(got, list) and len(got) == len(want) and got[1] != want[1] and got[2:] == want[2:]:
            raise _fail(entry, f"{what} has {got[1]} channels, expected {want[1]} (one per class)")
        raise _fail(entry, f"{what} has shape {got}, expected {want}")


class FirstForwardCheck:
    """Runs :func:`check_network_output` (and names the plugin if the forward raises) until one passes."""

    def __init__(self, entry: Any, num_classes: int) -> None:
        self.entry, self.num_classes, self.done = entry, num_classes, False

    def forward(self, model: Callable[[Any], Any], data: Any, target: Any) -> Any:
        if self.done:
            return model(data)
        try:
            output = model(data)
        except Exception as exc:
            from segforge.component_errors import component_failure, should_wrap

            origin = getattr(self.entry, "origin", None)
            if should_wrap(exc, origin):
                raise component_failure("network", self.entry.component, "forward pass", exc, origin) from exc
            raise
        check_network_output(output, data, target, self.num_classes, self.entry)
        self.done = True
        return output
