"""Contract tests a loss plugin gets for free: subclass :class:`LossComponentContract`.

In a plugin's test suite::

    from segforge.testing import LossComponentContract

    class TestFocalLoss(LossComponentContract):
        component = FocalLossComponent()
        params = {"gamma": 2.0}          # optional: params to test with (default: Params())

What every loss must satisfy, on tiny tensors (a second or two on a CPU):

* ``name``, ``version``, a pydantic ``Params`` whose defaults build, and a JSON round trip;
* for each kind of dataset (softmax labels, sigmoid regions, each with and without an ignore
  label) ``build`` either returns a module or refuses with a one-line :class:`SegforgeError`
  (e.g. "loss 'x' is for softmax outputs"); it must accept at least one kind;
* where it builds: a finite scalar with finite, non-zero gradients for the logits, alone and
  inside nnU-Net's deep-supervision weighting (three outputs, halving resolution);
* where it builds with an ignore label: logits at ignored voxels change neither the loss nor
  the gradient (accepting the context is the loss saying it handles the ignore label).

Each check is also a plain ``check_loss_*`` function taking a :class:`LossCase`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from segforge.errors import SegforgeError
from segforge.losses.components import LossContext

#: the four kinds of dataset a loss may be asked to train: (label, regions, ignore label)
KINDS: dict[str, tuple[Any, int | None]] = {
    "softmax": (None, None),
    "softmax+ignore": (None, 3),
    "regions": (((1, 2), (2,)), None),
    "regions+ignore": (((1, 2), (2,)), 3),
}
SPATIAL = (8, 8, 8)
DS_SCALES = [[1, 1, 1], [2, 2, 2], [4, 4, 4]]


@dataclass
class LossCase:
    """One loss component with its params, built (or refused) for one kind of dataset."""

    component: Any
    params: Any
    kind: str
    batch_size: int = 2

    @property
    def label(self) -> str:
        return f"loss '{getattr(self.component, 'name', type(self.component).__name__)}' ({self.kind})"

    @property
    def regions(self) -> Any:
        return KINDS[self.kind][0]

    @property
    def ignore_label(self) -> int | None:
        return KINDS[self.kind][1]

    @property
    def channels(self) -> int:
        return len(self.regions) if self.regions is not None else 3  # 3 softmax classes: labels 0, 1, 2

    def context(self, scales: list[list[int]] | None = None) -> LossContext:
        return LossContext(self.channels, True, scales or [[1, 1, 1]], self.ignore_label, self.regions)

    def build(self, scales: list[list[int]] | None = None) -> Any:
        """The module, or ``pytest.skip`` when the loss refuses this kind with a SegforgeError."""
        try:
            return self.component.build(self.params, self.context(scales))
        except SegforgeError as exc:
            pytest.skip(f"{self.label} refuses this kind of dataset: {exc.message}")

    def batch(self, seed: int = 0, spatial: tuple[int, ...] = SPATIAL) -> tuple[Any, Any, Any]:
        """``(logits requiring grad, integer target [B, 1, ...], ignored-voxel mask or None)``."""
        import torch

        g = torch.Generator().manual_seed(seed)
        logits = torch.randn((self.batch_size, self.channels, *spatial), generator=g).requires_grad_(True)
        target = torch.randint(0, 3, (self.batch_size, 1, *spatial), generator=g)
        ignored = None
        if self.ignore_label is not None:
            ignored = torch.rand((self.batch_size, 1, *spatial), generator=g) < 0.4
            target[ignored] = self.ignore_label
        return logits, target, ignored


def make_loss_case(component: Any, kind: str, params: Any = None) -> LossCase:
    """A :class:`LossCase` with ``params`` validated (default: the component's ``Params()``)."""
    params_cls = component.Params
    parsed = params if isinstance(params, params_cls) else params_cls.model_validate(params or {})
    return LossCase(component, parsed, kind)


def _finite_scalar(case: LossCase, value: Any, what: str) -> None:
    import torch

    assert isinstance(value, torch.Tensor) and value.ndim == 0, (
        f"{case.label}: {what} returned {type(value).__name__} of shape {getattr(value, 'shape', None)}, "
        "expected a 0-dim tensor"
    )
    assert bool(torch.isfinite(value)), f"{case.label}: {what} is not finite ({float(value)})"


def _is_deep_supervision(module: Any) -> bool:
    from segforge.losses.deep_supervision import DeepSupervisionLoss

    return isinstance(module, DeepSupervisionLoss)


# -- checks --------------------------------------------------------------------------------
def check_loss_attributes(component: Any) -> None:
    """name, version (strings), Params (a pydantic model class) and a callable ``build``."""
    from pydantic import BaseModel

    name = getattr(component, "name", None)
    assert isinstance(name, str) and name, f"loss component has no string 'name' (got {name!r})"
    assert isinstance(getattr(component, "version", None), str), f"loss '{name}': 'version' must be a string"
    params_cls = getattr(component, "Params", None)
    assert isinstance(params_cls, type) and issubclass(params_cls, BaseModel), (
        f"loss '{name}': 'Params' must be a pydantic model class, got {params_cls!r}"
    )
    assert callable(getattr(component, "build", None)), f"loss '{name}': 'build' must be callable"


def check_loss_default_params(component: Any) -> None:
    """``Params()`` validates with no arguments and survives a JSON round trip unchanged."""
    try:
        params = component.Params()
    except Exception as exc:  # the message is the point
        raise AssertionError(
            f"loss '{component.name}': Params() needs arguments ({exc}); give every field a default"
        ) from None
    again = type(params).model_validate_json(params.model_dump_json())
    json.loads(params.model_dump_json())
    assert again == params, f"loss '{component.name}': params changed in a JSON round trip: {params!r} -> {again!r}"


def check_loss_accepts_some_dataset(component: Any, params: Any = None) -> None:
    """Builds for at least one kind of dataset; refusals are SegforgeErrors, never other exceptions."""
    built = []
    for kind in KINDS:
        case = make_loss_case(component, kind, params)
        try:
            component.build(case.params, case.context())
            built.append(kind)
        except SegforgeError:
            continue
        except Exception as exc:
            raise AssertionError(
                f"{case.label}: build raised {type(exc).__name__}: {exc}; refuse a dataset with a "
                "segforge.errors.ConfigError(message, hint=...) instead"
            ) from exc
    assert built, f"loss '{component.name}' refuses every kind of dataset ({', '.join(KINDS)})"


def check_loss_scalar_and_gradients(case: LossCase) -> None:
    """A finite 0-dim loss whose gradient for the logits is finite and not all zero."""
    import torch

    module = case.build()
    logits, target, _ = case.batch()
    loss = module(logits, target)
    _finite_scalar(case, loss, "the loss")
    loss.backward()
    grad = logits.grad
    assert grad is not None, f"{case.label}: no gradient reaches the logits"
    assert bool(torch.isfinite(grad).all()), f"{case.label}: the logits' gradient is not finite"
    assert bool(grad.abs().sum() > 0), f"{case.label}: the logits' gradient is zero everywhere"


def check_loss_deep_supervision(case: LossCase) -> None:
    """Inside deep-supervision weighting (3 outputs at scales 1, 1/2, 1/4) every weighted output gets gradient."""
    import torch

    from segforge.losses.deep_supervision import DeepSupervisionLoss, deep_supervision_weights

    module = case.build(DS_SCALES)
    weights = deep_supervision_weights(len(DS_SCALES))
    loss_fn = module if _is_deep_supervision(module) else DeepSupervisionLoss(module, weights)
    logits, target, _ = case.batch()
    outputs = [logits.detach()[..., :: s[0], :: s[1], :: s[2]].clone().requires_grad_(True) for s in DS_SCALES]
    targets = [target[..., :: s[0], :: s[1], :: s[2]] for s in DS_SCALES]
    try:
        loss = loss_fn(outputs, targets)
    except Exception as exc:
        raise AssertionError(f"{case.label}: the deep-supervision loss raised {type(exc).__name__}: {exc}") from exc
    _finite_scalar(case, loss, "the deep-supervision loss")
    loss.backward()
    for i, (out, weight) in enumerate(zip(outputs, weights, strict=True)):
        if weight == 0:
            continue
        assert out.grad is not None and bool(torch.isfinite(out.grad).all()) and bool(out.grad.abs().sum() > 0), (
            f"{case.label}: deep-supervision output {i} (weight {weight}) gets no finite, non-zero gradient"
        )


def check_loss_ignores_ignored_voxels(case: LossCase) -> None:
    """With an ignore label: logits at ignored voxels change neither the loss nor get any gradient."""
    import torch

    if case.ignore_label is None:
        pytest.skip(f"{case.label}: no ignore label in this kind of dataset")
    module = case.build()
    logits, target, ignored = case.batch(seed=1)
    loss = module(logits, target)
    loss.backward()
    value = float(loss.detach())
    mask = ignored.expand_as(logits)
    leaked = int(torch.count_nonzero(logits.grad[mask]))
    assert leaked == 0, f"{case.label}: {leaked} gradient values flow into voxels labelled ignore ({case.ignore_label})"
    changed = logits.detach().clone()
    changed[mask] = torch.randn(int(mask.sum()), generator=torch.Generator().manual_seed(2)) * 100.0
    with torch.no_grad():
        again = float(module(changed, target))
    assert abs(again - value) <= 1e-5 * max(1.0, abs(value)), (
        f"{case.label}: changing logits at ignored voxels changed the loss from {value:.6f} to {again:.6f}"
    )


class LossComponentContract:
    """Base class of a loss component's contract tests (see the module docstring)."""

    component: Any = None
    params: Any = None

    @pytest.fixture(name="component")
    def _contract_component(self) -> Any:
        candidate = getattr(type(self), "component", None)
        if candidate is None or not hasattr(candidate, "build"):
            pytest.fail(f"{type(self).__name__}: set `component = MyLoss()` or define a `component` fixture")
        return candidate

    @pytest.fixture(params=list(KINDS))
    def loss_case(self, request: pytest.FixtureRequest, component: Any) -> LossCase:
        return make_loss_case(component, request.param, self.params)

    def test_has_contract_attributes(self, component: Any) -> None:
        check_loss_attributes(component)

    def test_default_params_validate_and_round_trip(self, component: Any) -> None:
        check_loss_default_params(component)

    def test_builds_for_some_dataset_and_refuses_cleanly(self, component: Any) -> None:
        check_loss_accepts_some_dataset(component, self.params)

    def test_finite_scalar_with_gradients(self, loss_case: LossCase) -> None:
        check_loss_scalar_and_gradients(loss_case)

    def test_deep_supervision_batch(self, loss_case: LossCase) -> None:
        check_loss_deep_supervision(loss_case)

    def test_ignored_voxels_are_ignored(self, loss_case: LossCase) -> None:
        check_loss_ignores_ignored_voxels(loss_case)
