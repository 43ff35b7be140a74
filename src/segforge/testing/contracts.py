"""Contract tests a network plugin gets for free: subclass :class:`NetworkBuilderContract`.

In a plugin's test suite::

    from segforge.testing import NetworkBuilderContract

    class TestSwinUNet(NetworkBuilderContract):
        builder = SwinUNetBuilder()
        params_3d = {"embed_dim": 12}       # optional: small params per dims (dict or Params)
        patch_3d = (32, 32, 32)             # optional: rounded up to what constraints accept

pytest collects the subclass (the base class's name does not start with ``Test``) and runs
every ``test_*`` method below for 2D and 3D, skipping dims the builder does not support.
``builder`` may also be a pytest fixture of that name (for parametrizing over builders).
Each check is also a plain function (``check_*``) taking a :class:`NetworkCase`, and every
failure message names the expectation that failed, e.g. ``deep-supervision output 1 has shape
[2, 3, 4, 4], expected [2, 3, 8, 8]``.

Params per dims: ``params_2d`` / ``params_3d`` when given; otherwise ``Params()`` when its
``dims`` attribute matches (or the builder supports only that dims); otherwise what the
builder's ``propose`` returns for the test patch. Tensors are tiny, so the kit runs in seconds
on a CPU.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from segforge.networks.builder import TopologyRequest


@dataclass
class NetworkCase:
    """One builder in one dims, with the params, patch and sizes the checks use."""

    builder: Any
    dims: int
    params: Any
    patch: tuple[int, ...]
    in_channels: int = 1
    num_classes: int = 3
    batch_size: int = 2

    @property
    def label(self) -> str:
        return f"network '{getattr(self.builder, 'name', type(self.builder).__name__)}' ({self.dims}D)"

    @property
    def request(self) -> TopologyRequest:
        return TopologyRequest(tuple(self.patch), (1.0,) * self.dims, self.in_channels, self.num_classes)

    def accepted_patch(self, params: Any = None) -> tuple[int, ...]:
        """The test patch rounded up to what the builder's constraints accept."""
        return tuple(self.builder.constraints(self.params if params is None else params).round_up(tuple(self.patch)))

    def input(self, patch: tuple[int, ...]):
        import torch

        gen = torch.Generator().manual_seed(0)
        return torch.randn((self.batch_size, self.in_channels, *patch), generator=gen)

    def build(self, deep_supervision: bool, params: Any = None):
        import torch

        torch.manual_seed(0)
        params = self.params if params is None else params
        return self.builder.build(params, self.in_channels, self.num_classes, deep_supervision)


def _parse(builder: Any, params: Any) -> Any:
    if hasattr(builder, "parse_params"):
        return builder.parse_params(params)
    return params if isinstance(params, builder.Params) else builder.Params.model_validate(params)


def make_case(builder: Any, dims: int, params: Any = None, patch: tuple[int, ...] | None = None, **sizes: int):
    """A :class:`NetworkCase`, choosing params as the module docstring describes."""
    patch = tuple(patch or (16,) * dims)
    case = NetworkCase(builder, dims, None, patch, **sizes)
    if params is not None:
        case.params = _parse(builder, params)
        return case
    defaults = _default_params(builder)
    if defaults is not None and (getattr(defaults, "dims", None) == dims or tuple(builder.dims) == (dims,)):
        case.params = defaults
    else:
        case.params = builder.propose(case.request)
    return case


def _default_params(builder: Any) -> Any:
    try:
        return builder.Params()
    except Exception:  # Params without defaults: the kit proposes instead
        return None


def _shape(t: Any) -> list[int]:
    return list(t.shape)


# -- checks --------------------------------------------------------------------------------
def check_attributes(builder: Any) -> None:
    """name, version, Params (pydantic), dims in (2, 3) and the contract's methods."""
    from pydantic import BaseModel

    name = getattr(builder, "name", None)
    assert isinstance(name, str) and name, f"builder has no string 'name' (got {name!r})"
    assert isinstance(getattr(builder, "version", None), str), f"network '{name}': 'version' must be a string"
    params_cls = getattr(builder, "Params", None)
    assert isinstance(params_cls, type) and issubclass(params_cls, BaseModel), (
        f"network '{name}': 'Params' must be a pydantic model class, got {params_cls!r}"
    )
    dims = tuple(getattr(builder, "dims", ()))
    assert dims and set(dims) <= {2, 3}, f"network '{name}': 'dims' must be a non-empty subset of (2, 3), got {dims}"
    for method in ("propose", "constraints", "build", "estimate_memory"):
        assert callable(getattr(builder, method, None)), f"network '{name}': '{method}' must be callable"


def check_params_roundtrip(case: NetworkCase, params: Any = None) -> None:
    """Params survive ``model_dump_json`` -> ``model_validate_json`` unchanged and are plain JSON."""
    params = case.params if params is None else params
    text = params.model_dump_json()
    json.loads(text)
    again = type(params).model_validate_json(text)
    assert again == params, f"{case.label}: params changed in a JSON round trip: {params!r} -> {again!r}"


def check_output_shape(case: NetworkCase) -> None:
    """Without deep supervision ``forward`` returns one tensor ``[B, num_classes, *patch]``."""
    patch = case.accepted_patch()
    net = case.build(deep_supervision=False)
    out = net(case.input(patch))
    assert not isinstance(out, (list, tuple)), f"{case.label}: without deep supervision forward returned a list"
    expected = [case.batch_size, case.num_classes, *patch]
    assert _shape(out) == expected, f"{case.label}: output has shape {_shape(out)}, expected {expected}"


def check_deep_supervision(case: NetworkCase) -> None:
    """A list, full resolution first, each output at its ``deep_supervision_scales`` entry."""
    if not case.builder.constraints(case.params).deep_supervision:
        pytest.skip(f"{case.label} does not support deep supervision")
    patch = case.accepted_patch()
    net = case.build(deep_supervision=True)
    outputs = net(case.input(patch))
    assert isinstance(outputs, (list, tuple)), (
        f"{case.label}: with deep supervision forward returned {type(outputs).__name__}, expected a list"
    )
    scales = getattr(net, "deep_supervision_scales", None)
    assert scales is not None, f"{case.label}: the network has no 'deep_supervision_scales' attribute"
    assert len(scales) == len(outputs), (
        f"{case.label}: {len(outputs)} deep-supervision outputs but {len(scales)} deep_supervision_scales"
    )
    for i, (out, scale) in enumerate(zip(outputs, scales, strict=True)):
        assert len(scale) == case.dims, (
            f"{case.label}: deep-supervision scale {i} is {scale}, expected {case.dims} axes"
        )
        if i == 0:
            assert all(s == 1 for s in scale), f"{case.label}: deep-supervision scale 0 is {scale}, expected all 1"
        expected = [case.batch_size, case.num_classes, *(p // s for p, s in zip(patch, scale, strict=True))]
        assert _shape(out) == expected, (
            f"{case.label}: deep-supervision output {i} has shape {_shape(out)}, expected {expected} (scale {scale})"
        )


def check_constraints(case: NetworkCase) -> None:
    """A patch off the divisor is rejected; its round_up / round_down are accepted."""
    c = case.builder.constraints(case.params)
    patch = case.accepted_patch()
    assert c.accepts(patch), f"{case.label}: constraints reject their own round_up {patch}: {c.problems(patch)}"
    axes = [i for i, d in enumerate(c.divisors) if d > 1]
    if not axes:
        pytest.skip(f"{case.label}: every divisor is 1, no patch is off-grid")
    bad = tuple(p + 1 if i in axes else p for i, p in enumerate(patch))
    assert not c.accepts(bad), f"{case.label}: constraints accept {bad}, which is not a multiple of {c.divisors}"
    for how in ("round_up", "round_down"):
        rounded = tuple(getattr(c, how)(bad))
        assert c.accepts(rounded), f"{case.label}: {how}({bad}) = {rounded} is not accepted: {c.problems(rounded)}"
    assert all(u >= b for u, b in zip(c.round_up(bad), bad, strict=True)), (
        f"{case.label}: round_up({bad}) made an axis smaller"
    )


def check_propose(case: NetworkCase) -> None:
    """``propose`` returns this builder's Params, and the network it builds accepts the rounded patch."""
    params = case.builder.propose(case.request)
    assert isinstance(params, case.builder.Params), (
        f"{case.label}: propose returned {type(params).__name__}, expected {case.builder.Params.__name__}"
    )
    check_params_roundtrip(case, params)
    patch = case.accepted_patch(params)
    out = case.build(deep_supervision=False, params=params)(case.input(patch))
    expected = [case.batch_size, case.num_classes, *patch]
    assert _shape(out) == expected, (
        f"{case.label}: network from proposed params gives shape {_shape(out)} for patch {list(patch)}, "
        f"expected {expected}"
    )


def check_gradients(case: NetworkCase) -> None:
    """Forward + backward on CPU gives a finite gradient for every parameter that requires grad."""
    import torch

    ds = bool(case.builder.constraints(case.params).deep_supervision)
    net = case.build(deep_supervision=ds)
    outputs = net(case.input(case.accepted_patch()))
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    loss = sum(o.float().pow(2).mean() for o in outputs)
    loss.backward()
    for name, param in net.named_parameters():
        if not param.requires_grad:
            continue
        assert param.grad is not None, f"{case.label}: parameter '{name}' received no gradient"
        assert bool(torch.isfinite(param.grad).all()), f"{case.label}: parameter '{name}' has a non-finite gradient"


def check_memory_estimate(case: NetworkCase) -> None:
    """``estimate_memory`` returns a positive int that grows with the batch size."""
    patch = case.accepted_patch()
    one = case.builder.estimate_memory(case.params, patch, case.in_channels, case.num_classes, 1)
    two = case.builder.estimate_memory(case.params, patch, case.in_channels, case.num_classes, 2)
    assert isinstance(one, int) and one > 0, f"{case.label}: estimate_memory returned {one!r}, expected a positive int"
    assert two > one, f"{case.label}: estimate_memory does not grow with batch size ({one} for 1, {two} for 2)"


class NetworkBuilderContract:
    """Base class of a network builder's contract tests (see the module docstring)."""

    builder: Any = None
    params_2d: Any = None
    params_3d: Any = None
    patch_2d: tuple[int, ...] = (16, 16)
    patch_3d: tuple[int, ...] = (16, 16, 16)
    in_channels: int = 1
    num_classes: int = 3
    batch_size: int = 2

    # Registered under the fixture name "builder". A subclass's own ``builder`` fixture replaces it
    # (pytest registers a class's fixtures in dir() order, so ``builder`` comes after this one);
    # a plain ``builder = MyBuilder()`` attribute is returned by it.
    @pytest.fixture(name="builder")
    def _contract_builder(self) -> Any:
        candidate = getattr(type(self), "builder", None)
        if candidate is None or not hasattr(candidate, "build"):
            pytest.fail(f"{type(self).__name__}: set `builder = MyBuilder()` or define a `builder` fixture")
        return candidate

    @pytest.fixture(params=[2, 3], ids=["2d", "3d"])
    def case(self, request: pytest.FixtureRequest, builder: Any) -> NetworkCase:
        dims = request.param
        if dims not in tuple(builder.dims):
            pytest.skip(f"network '{builder.name}' does not support {dims}D")
        return make_case(
            builder,
            dims,
            params=getattr(self, f"params_{dims}d"),
            patch=getattr(self, f"patch_{dims}d"),
            in_channels=self.in_channels,
            num_classes=self.num_classes,
            batch_size=self.batch_size,
        )

    def test_has_contract_attributes(self, builder: Any) -> None:
        check_attributes(builder)

    def test_params_json_roundtrip(self, case: NetworkCase) -> None:
        check_params_roundtrip(case)

    def test_output_shape_without_deep_supervision(self, case: NetworkCase) -> None:
        check_output_shape(case)

    def test_deep_supervision_outputs(self, case: NetworkCase) -> None:
        check_deep_supervision(case)

    def test_constraints_reject_and_round(self, case: NetworkCase) -> None:
        check_constraints(case)

    def test_propose_builds_for_the_patch(self, case: NetworkCase) -> None:
        check_propose(case)

    def test_backward_gives_finite_gradients(self, case: NetworkCase) -> None:
        check_gradients(case)

    def test_estimate_memory_grows_with_batch(self, case: NetworkCase) -> None:
        check_memory_estimate(case)


__all__ = [
    "NetworkBuilderContract",
    "NetworkCase",
    "make_case",
    "check_attributes",
    "check_params_roundtrip",
    "check_output_shape",
    "check_deep_supervision",
    "check_constraints",
    "check_propose",
    "check_gradients",
    "check_memory_estimate",
]
