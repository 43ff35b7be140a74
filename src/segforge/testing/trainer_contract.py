"""Contract tests a trainer plugin gets for free: subclass :class:`TrainerContract`.

In a plugin's test suite::

    from segforge.testing import TrainerContract

    class TestSwinTrainer(TrainerContract):
        trainer_class = SwinTrainer
        overrides = {"warmup_iterations": 1}   # optional: trainer params for the tiny run

What every trainer must satisfy, on a tiny synthetic task that the kit plans and preprocesses
once per test class (4 cases of 12x16x14 voxels, a 4-8-16 feature U-Net; seconds on a CPU):

* ``name``, ``version``, a pydantic ``Params`` that validates with no arguments, and a
  registered ``default_loss``;
* every step the loop, resume, budget and DDP code call exists and takes the arguments they
  pass (:data:`TRAINER_STEPS`);
* ``make_schedule`` returns a schedule with ``lr_at``/``retarget``/``state_dict`` whose state is
  plain JSON and rebuilds the same learning rates through its class's ``from_state``;
* one ``train_step`` on a real batch returns a finite float and changes the weights;
* ``validate`` returns the loss and one pseudo-Dice per scored class;
* the checkpoint payload survives ``torch.load(weights_only=True)`` and ``restore`` into a fresh
  trainer gives the same counters, weights and learning rates;
* ``fit`` trains one short epoch to ``checkpoint_final.pt``.

Each check is also a plain ``check_trainer_*`` function.
"""

from __future__ import annotations

import inspect
import io
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

#: the trainer methods other parts of segforge call, with the positional arguments they pass
TRAINER_STEPS: dict[str, int] = {
    "setup": 0,
    "build_network": 0,
    "build_loss": 0,
    "configure_optimizer": 0,
    "make_schedule": 0,
    "make_loaders": 0,
    "lr_at": 1,
    "set_lr": 1,
    "train_step": 1,
    "validation_step": 1,
    "train_batches": 2,
    "val_batches": 2,
    "validate": 2,
    "on_epoch_start": 1,
    "on_epoch_end": 4,
    "done": 0,
    "checkpoint_payload": 0,
    "save_checkpoint": 1,
    "restore": 1,
    "load_pretrained": 1,
    "write_manifest": 1,
    "fit": 1,
    # how the budget, torchrun and --continue change a run (segforge.training.protocols.Trainer)
    "resize": 1,
    "load_schedule": 1,
    "set_precision": 1,
    "set_threads": 1,
    "after_training": 0,
    "complete_after_training": 0,
}
SCHEDULE_METHODS = ("lr_at", "retarget", "state_dict")
TASK, DATASET = "990", "Task990_TrainerContract"
RUN_PARAMS = {"epochs": 1, "iterations_per_epoch": 2, "val_iterations": 1, "final_val_iterations": 1, "threads": 1}


def prepare_contract_task(root: Path) -> Path:
    """Plan and preprocess the kit's tiny task under ``root`` (SEGFORGE_RAW/PREPROCESSED must point there)."""
    from segforge import plugins
    from segforge.cli.app import main
    from segforge.planning import load_plans, save_plans
    from segforge.testing.synthetic import make_task

    make_task(root / "raw" / DATASET, n_cases=4, shape=(12, 16, 14), seed=5)
    plugins.reset_manager()
    try:
        main(["plan-and-preprocess", "--task", TASK, "-np", "1", "--configs", "3d_fullres"])
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise RuntimeError(f"the contract kit could not preprocess its task (exit code {exc.code})") from None
    finally:
        plugins.reset_manager()
    plans_file = root / "pre" / DATASET / "segforgePlans.json"
    plans = load_plans(plans_file)
    confs = {}
    for name, conf in plans.configurations.items():
        stages = len(conf.network.params["features_per_stage"])
        params = {**conf.network.params, "features_per_stage": [4, 8, 16, 32, 64, 128][:stages]}
        network = conf.network.model_copy(update={"params": params})
        confs[name] = conf.model_copy(update={"network": network, "batch_size": 2})
    save_plans(plans.model_copy(update={"configurations": confs}), plans_file)
    return root


def make_trainer(trainer_class: Any, overrides: dict[str, Any] | None = None, *, setup: bool = True) -> Any:
    """``trainer_class`` on fold ``all`` of the prepared task, on the CPU, set up (registered or not)."""
    import torch

    from segforge.plugins import get_registries
    from segforge.registry import Entry, Origin
    from segforge.training import distributed
    from segforge.training.rank_log import open_log
    from segforge.training.run_setup import RunRequest, resolve_run

    context = resolve_run(RunRequest(task=TASK, fold="all", deterministic=True), get_registries())
    context.trainer_entry = Entry("trainer", trainer_class.name, trainer_class, Origin("contract-kit"))
    fields = trainer_class.Params.model_fields
    values = {k: v for k, v in {**RUN_PARAMS, **(overrides or {})}.items() if k in fields}
    params = trainer_class.Params.model_validate(values)
    context.fold_folder.mkdir(parents=True, exist_ok=True)
    log = open_log(distributed.current(), context.fold_folder / "training_log.txt")
    trainer = trainer_class(context, params, log, device=torch.device("cpu"))
    if setup:
        trainer.setup()
    return trainer


def _label(cls: Any) -> str:
    return f"trainer '{getattr(cls, 'name', cls.__name__)}'"


# -- checks --------------------------------------------------------------------------------
def check_trainer_attributes(trainer_class: Any) -> None:
    """name, version (strings), Params (pydantic, validates with no arguments), a registered default_loss."""
    from pydantic import BaseModel

    from segforge.plugins import get_registries

    name = getattr(trainer_class, "name", None)
    assert isinstance(name, str) and name, f"trainer class has no string 'name' (got {name!r})"
    assert isinstance(getattr(trainer_class, "version", None), str), f"trainer '{name}': 'version' must be a string"
    params_cls = getattr(trainer_class, "Params", None)
    assert isinstance(params_cls, type) and issubclass(params_cls, BaseModel), (
        f"trainer '{name}': 'Params' must be a pydantic model class, got {params_cls!r}"
    )
    params_cls()  # every field has a default: `segforge train` starts from Params()
    loss = getattr(trainer_class, "default_loss", "dc_ce")
    assert loss in get_registries().loss, f"trainer '{name}': default_loss '{loss}' is not a registered loss"


def check_trainer_steps(trainer_class: Any) -> None:
    """Every step in :data:`TRAINER_STEPS` is a method accepting the arguments segforge passes."""
    for step, count in TRAINER_STEPS.items():
        method = getattr(trainer_class, step, None)
        assert callable(method), f"{_label(trainer_class)}: missing step '{step}'"
        try:
            inspect.signature(method).bind(object(), *([None] * count))
        except TypeError as exc:
            raise AssertionError(
                f"{_label(trainer_class)}: step '{step}{inspect.signature(method)}' cannot be called with "
                f"{count} argument(s) ({exc})"
            ) from None


def check_trainer_schedule(trainer: Any) -> None:
    """``make_schedule()`` has lr_at/retarget/state_dict; its JSON state rebuilds the same rates via from_state."""
    schedule = trainer.make_schedule()
    for method in SCHEDULE_METHODS:
        assert callable(getattr(schedule, method, None)), (
            f"{_label(type(trainer))}: the schedule ({type(schedule).__name__}) has no '{method}'"
        )
    total = trainer.total_iterations
    rates = [schedule.lr_at(i) for i in (0, total // 2, total - 1)]
    assert all(isinstance(r, float) and math.isfinite(r) and r >= 0 for r in rates), (
        f"{_label(type(trainer))}: lr_at gives {rates}, expected finite non-negative floats"
    )
    state = schedule.state_dict()
    json.dumps(state)  # plain data: it goes into a weights_only checkpoint
    rebuilt = type(schedule).from_state(json.loads(json.dumps(state)))
    again = [rebuilt.lr_at(i) for i in (0, total // 2, total - 1)]
    assert again == rates, f"{_label(type(trainer))}: from_state(state_dict()) gives rates {again}, expected {rates}"
    schedule.retarget(1, 2 * total)
    assert math.isfinite(schedule.lr_at(total)), f"{_label(type(trainer))}: lr_at is not finite after retarget"


def check_trainer_train_step(trainer: Any) -> float:
    """One ``train_step`` on a real batch: a finite float, and the weights change."""
    import torch

    before = [p.detach().clone() for p in trainer.network.parameters()]
    batch = next(iter(trainer.train_batches(0, 0)))
    trainer.set_lr(trainer.lr_at(0))
    loss = trainer.train_step(batch)
    assert isinstance(loss, float) and math.isfinite(loss), (
        f"{_label(type(trainer))}: train_step returned {loss!r}, expected a finite float"
    )
    changed = any(not torch.equal(b, p.detach()) for b, p in zip(before, trainer.network.parameters(), strict=True))
    assert changed, f"{_label(type(trainer))}: train_step left every weight unchanged"
    return loss


def check_trainer_validate(trainer: Any) -> None:
    """``validate(epoch, 1)`` returns a finite loss and one pseudo-Dice per scored class."""
    val = trainer.validate(0, 1)
    scored = trainer.context.label_scheme.num_scored
    assert {"loss", "dice", "mean_dice"} <= set(val), f"{_label(type(trainer))}: validate returned keys {sorted(val)}"
    assert math.isfinite(val["loss"]), f"{_label(type(trainer))}: validation loss {val['loss']} is not finite"
    assert len(val["dice"]) == scored, (
        f"{_label(type(trainer))}: {len(val['dice'])} pseudo-Dice values, expected {scored} (one per scored class)"
    )


def check_trainer_state_roundtrip(trainer: Any, fresh: Any) -> None:
    """The payload loads with weights_only=True; ``restore`` into ``fresh`` gives the same state, weights and rates."""
    import torch

    trainer.state.iteration, trainer.state.epoch = 1, 0
    buffer = io.BytesIO()
    torch.save(trainer.checkpoint_payload(), buffer)
    buffer.seek(0)
    payload = torch.load(buffer, weights_only=True)
    fresh.restore(payload)
    label = _label(type(trainer))
    before, after = trainer.state.state_dict(), fresh.state.state_dict()
    differ = sorted(k for k in before if k != "elapsed_s" and before[k] != after.get(k))  # elapsed: the clock's
    assert not differ, f"{label}: restore changed the training state ({', '.join(differ)})"
    for (name, a), b in zip(trainer.network.state_dict().items(), fresh.network.state_dict().values(), strict=True):
        assert torch.equal(a, b), f"{label}: weight '{name}' differs after restore"
    iterations = (0, trainer.total_iterations - 1)
    assert [fresh.lr_at(i) for i in iterations] == [trainer.lr_at(i) for i in iterations], (
        f"{label}: learning rates differ after restore (is make_schedule's schedule restored by its own from_state?)"
    )


def check_trainer_fit(trainer: Any) -> None:
    """``fit`` trains the short run to the end and writes checkpoint_final.pt."""
    result = trainer.fit()
    assert result.status == "finished", f"{_label(type(trainer))}: fit ended with status {result.status!r}"
    assert (trainer.context.fold_folder / "checkpoint_final.pt").is_file(), (
        f"{_label(type(trainer))}: fit finished without checkpoint_final.pt"
    )


class TrainerContract:
    """Base class of a trainer's contract tests (see the module docstring)."""

    trainer_class: Any = None
    overrides: dict[str, Any] | None = None

    @pytest.fixture(name="trainer_class")
    def _contract_trainer_class(self) -> Any:
        candidate = getattr(type(self), "trainer_class", None)
        if candidate is None:
            pytest.fail(f"{type(self).__name__}: set `trainer_class = MyTrainer` or define a `trainer_class` fixture")
        return candidate

    @pytest.fixture(scope="class")
    @classmethod
    def contract_task(cls, tmp_path_factory: pytest.TempPathFactory) -> Any:
        root = tmp_path_factory.mktemp("trainer_contract")
        with pytest.MonkeyPatch.context() as patch:
            for var, sub in (("SEGFORGE_RAW", "raw"), ("SEGFORGE_PREPROCESSED", "pre")):
                patch.setenv(var, str(root / sub))
            prepare_contract_task(root)
        return root

    @pytest.fixture
    def trainer_env(self, contract_task: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
        """The prepared task; results go to this test's own folder."""
        import torch

        monkeypatch.setenv("SEGFORGE_RAW", str(contract_task / "raw"))
        monkeypatch.setenv("SEGFORGE_PREPROCESSED", str(contract_task / "pre"))
        monkeypatch.setenv("SEGFORGE_RESULTS", str(tmp_path / "results"))
        threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
        yield contract_task
        torch.set_num_threads(threads)  # trainers set these process-wide
        torch.use_deterministic_algorithms(deterministic)

    def _trainer(self, trainer_class: Any) -> Any:
        return make_trainer(trainer_class, self.overrides)

    def test_has_contract_attributes(self, trainer_class: Any) -> None:
        check_trainer_attributes(trainer_class)

    def test_steps_take_the_arguments_segforge_passes(self, trainer_class: Any) -> None:
        check_trainer_steps(trainer_class)

    def test_schedule_interface_and_state(self, trainer_class: Any, trainer_env: Path) -> None:
        check_trainer_schedule(self._trainer(trainer_class))

    def test_train_step_validate_and_restore(self, trainer_class: Any, trainer_env: Path) -> None:
        trainer = self._trainer(trainer_class)
        check_trainer_train_step(trainer)
        check_trainer_validate(trainer)
        check_trainer_state_roundtrip(trainer, self._trainer(trainer_class))
        trainer.log.close()

    def test_fit_trains_a_short_run(self, trainer_class: Any, trainer_env: Path) -> None:
        trainer = self._trainer(trainer_class)
        try:
            check_trainer_fit(trainer)
        finally:
            trainer.log.close()
