"""Before a budgeted run's trainer is built: which configuration, patch, network width and batch.

:func:`plan_budget_run` times the planned network of each candidate configuration on a
synthetic batch (:func:`.budget_probe.time_network_step`, within the probe deadline), hands
the speeds to the pure rules of :mod:`.budget_plan` and applies the choice to the run context:
another configuration (when ``--config`` was not given and both ``3d_fullres`` and ``2d`` are
preprocessed), a narrower network or a smaller patch (written into the run's plans, so the
checkpoint, the manifest and prediction all see the network that was trained). The reasons
become notes, which the training log header and ``manifest.json`` carry.

A run continued with ``--continue`` re-decides nothing: :func:`continued_configuration` finds
the configuration an earlier session chose and :func:`adopt_checkpoint_plans` takes the
patch and network the checkpoint was trained with.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from segforge.errors import SegforgeError
from segforge.training.budget_plan import (
    CONFIGURATION_PREFERENCE,
    Option,
    Plan,
    PlanInputs,
    ScaledSpeeds,
    choose_option,
    option_ladder,
    precision_plan,
    thread_candidates,
)
from segforge.training.budget_probe import Deadline, time_network_step

#: a smaller patch keeps this share of each edge (then rounded down to what the network accepts)
PATCH_SHRINK = 0.8
#: the narrowest first stage a half-width network may have
MIN_FEATURES = 4


def budget_batch(conf: Any, device_type: str, params: Any) -> int:
    """CPU: ``budget.batch_size`` (3D) / ``budget.batch_size_2d`` (2D), never above the planned batch;
    CUDA: the planned batch (sized to the GPU's memory) unless ``budget.batch_size`` was set."""
    planned = int(conf.batch_size)
    if device_type == "cuda" and "batch_size" not in params.model_fields_set:
        return planned
    wanted = params.batch_size_2d if conf.dims == 2 else params.batch_size
    return min(int(wanted), planned) if wanted else planned


def _candidates(request: Any, context: Any, resolve: Callable[[Any], Any]) -> tuple[list[Any], list[str]]:
    """Run contexts the budget may choose between, in preference order; notes on those left out."""
    if request.configuration_explicit or context.configuration.name != CONFIGURATION_PREFERENCE[0]:
        return [context], []
    out, notes = [context], []
    for name in CONFIGURATION_PREFERENCE[1:]:
        if name not in context.plans.configurations:
            continue
        try:
            out.append(resolve(dataclasses.replace(request, configuration=name)))
        except SegforgeError as exc:  # planned but not preprocessed: not a candidate
            notes.append(f"budget: {name} not considered ({exc.message})")
    return out, notes


def _half_width(context: Any) -> dict[str, Any] | None:
    """The network params at half width, when the network has ``features_per_stage`` and accepts them."""
    params = dict(context.configuration.network.params)
    features = params.get("features_per_stage")
    if not isinstance(features, list) or min(features) < 2 * MIN_FEATURES:
        return None
    params["features_per_stage"] = [int(f) // 2 for f in features]
    try:
        context.network_entry.component.parse_params(params)
    except (SegforgeError, ValueError):
        return None
    return params


def _smaller_patch(context: Any, params: dict[str, Any]) -> tuple[int, ...] | None:
    builder = context.network_entry.component
    patch = tuple(int(p) for p in context.configuration.patch_size)
    try:
        constraints = builder.constraints(builder.parse_params(params))
    except (SegforgeError, ValueError, NotImplementedError):
        return None
    smaller = constraints.round_down(tuple(max(1, int(p * PATCH_SHRINK)) for p in patch))
    return smaller if constraints.accepts(smaller) and smaller != patch else None


def plan_budget_run(
    request: Any, context: Any, trainer_params: Any, device: Any, clock: Any, resolve: Callable[[Any], Any]
) -> tuple[Any, Plan, float]:
    """The context to train, the plan (with reasons) and the seconds its synthetic probe spent."""
    from segforge.training.device import (
        PrecisionChoice,
        available_cores,
        bf16_disabled,
        cpu_has_bf16,
        other_load,
        set_threads,
    )

    b = trainer_params.budget
    budget_s = float(request.time_budget_min) * 60
    contexts, notes = _candidates(request, context, resolve)
    by_name = {c.configuration.name: c for c in contexts}
    planned = [
        Option(c.configuration.name, tuple(c.configuration.patch_size), budget_batch(c.configuration, device.type, b))
        for c in contexts
    ]
    precision = precision_plan(device.type, cpu_has_bf16(), bf16_disabled(), request.fp32, b.precision).candidates[0]
    load = other_load() if device.type == "cpu" else 0.0
    threads = thread_candidates(device.type, available_cores(), load, trainer_params.threads)[0]
    if threads:  # time at the thread count training starts with (spinning extra threads on a busy CPU cost 4x)
        set_threads(threads[0])
    deadline = Deadline(clock.session, b.probe_share * budget_s)
    speeds = ScaledSpeeds()
    inputs = PlanInputs(budget_s, b.min_iterations, b.train_share, clock.elapsed(), b.min_iterations_2d)
    for option in planned:
        ctx = by_name[option.configuration]
        seconds = _time_option(ctx, option, device, PrecisionChoice(precision, device.type), deadline)
        if seconds is not None:
            speeds.add(option, seconds)
            if choose_option(inputs, [option], speeds).expected_iterations >= inputs.required_steps(option):
                break  # the best remaining option already gets its steps: cheaper ones need no timing
    widths = {name: _half_width(ctx) for name, ctx in by_name.items()}
    ladder = option_ladder(
        planned,
        lambda o: b.adapt_network and widths[o.configuration] is not None,
        lambda o: _smaller_patch(by_name[o.configuration], widths[o.configuration]) if b.adapt_patch else None,
    )
    inputs = dataclasses.replace(inputs, spent_s=clock.elapsed())
    plan = choose_option(inputs, ladder, speeds)
    chosen = _apply(by_name[plan.option.configuration], plan.option, widths[plan.option.configuration])
    chosen.notes = [*chosen.notes, *notes, *(f"budget: {r}" for r in plan.reasons)]
    if chosen.configuration.name != context.configuration.name:
        name = chosen.configuration.name
        chosen.notes.append(f"budget: the model is trained as {name}: predict it with --config {name}")
    return chosen, plan, deadline.spent()


def _time_option(ctx: Any, option: Option, device: Any, precision: Any, deadline: Deadline) -> float | None:
    """One configuration's network, as planned, timed on a synthetic batch (then discarded).

    A network that fails here (a plugin's bug, no memory for the batch) is left unmeasured: the
    trainer builds it again and reports a failure with its own, clearer error.
    """
    builder = ctx.network_entry.component
    try:
        params = builder.parse_params(ctx.configuration.network.params)
        network = builder.build(params, ctx.in_channels, ctx.num_classes).to(device)
        return time_network_step(network, ctx.in_channels, option.patch, option.batch, device, precision, deadline)
    except Exception:  # noqa: BLE001 - see the docstring
        return None
    finally:
        if device.type == "cuda":
            import torch

            torch.cuda.empty_cache()


def _apply(context: Any, option: Option, half_width: dict[str, Any] | None) -> Any:
    """Write a narrower network / smaller patch into the run's plans (the data folder stays the same)."""
    conf = context.configuration
    update: dict[str, Any] = {}
    if option.width != 1.0 and half_width is not None:
        update["network"] = conf.network.model_copy(update={"params": half_width})
    if tuple(option.patch) != tuple(conf.patch_size):
        update["patch_size"] = list(option.patch)
    if not update:
        return context
    conf = conf.model_copy(update=update)
    plans = context.plans.model_copy(update={"configurations": {**context.plans.configurations, conf.name: conf}})
    return dataclasses.replace(context, configuration=conf, plans=plans)


def continued_configuration(
    request: Any, context: Any, resolve: Callable[[Any], Any], *, needs_checkpoint: bool | None = None
) -> Any:
    """``--continue`` (or ``--validate-only``: ``needs_checkpoint``) without ``--config``: the configuration
    whose fold folder holds the run's checkpoint, when the default's has none (a budget chose 2d)."""
    from segforge.training.checkpoint import BEST, FINAL, LATEST

    def has_checkpoint(ctx: Any) -> bool:
        return any((ctx.fold_folder / name).is_file() for name in (LATEST, FINAL, BEST))

    wanted = request.resume if needs_checkpoint is None else needs_checkpoint
    if not wanted or request.configuration_explicit or has_checkpoint(context):
        return context
    for candidate in _candidates(request, context, resolve)[0][1:]:
        if has_checkpoint(candidate):
            candidate.notes = [*candidate.notes, f"the budgeted run is in {candidate.configuration.name}"]
            return candidate
    return context


def adopt_checkpoint_plans(context: Any, resume: dict[str, Any] | None) -> Any:
    """A continued run trains the network and patch its checkpoint recorded (a budget may have changed them)."""
    if not resume or not resume.get("plans_json"):
        return context
    from segforge.config.plans import Plans

    stored = Plans.model_validate_json(resume["plans_json"]).configurations.get(context.configuration.name)
    if stored is None or (
        stored.patch_size == context.configuration.patch_size and stored.network == context.configuration.network
    ):
        return context
    plans = context.plans.model_copy(update={"configurations": {**context.plans.configurations, stored.name: stored}})
    return dataclasses.replace(context, configuration=stored, plans=plans)


def plan_if_budgeted(
    request: Any,
    context: Any,
    resume: Any,
    trainer_params: Any,
    device: Any,
    clock: Any,
    distributed_run: bool,
    resolve,
) -> tuple[Any, tuple[Plan, float] | None]:
    """:func:`plan_budget_run` for a fresh ``--time-budget`` run in one process (torchrun ranks would each
    time the networks and could choose differently; continued runs keep their first session's choice)."""
    if request.time_budget_min is None or resume is not None or distributed_run:
        return context, None
    chosen, plan, spent = plan_budget_run(request, context, trainer_params, device, clock, resolve)
    return chosen, (plan, spent)
