"""The default trainer: nnU-Net v2's recipe as a sequence of small steps a plugin can override.

A plugin trainer subclasses :class:`DefaultTrainer`, sets ``name``/``version`` (and ``Params``
when it adds settings) and overrides only the steps it changes, e.g. an AdamW optimizer with
warm-up cosine decay for transformers::

    class SwinTrainer(DefaultTrainer):
        name = "swin"

        def configure_optimizer(self):
            return torch.optim.AdamW(self.network.parameters(), lr=self.params.initial_lr, weight_decay=0.05)

        def lr_at(self, iteration):
            return warmup_cosine_lr(self.params.initial_lr, iteration, self.total_iterations, warmup=500)

The epoch loop itself is :func:`segforge.training.loop.run_training`; checkpoint contents are
assembled here (:meth:`checkpoint_payload`) and written by :mod:`.checkpoint`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from segforge._version import __version__
from segforge.training import checkpoint as ckpt
from segforge.training import distributed
from segforge.training.callbacks import Callbacks
from segforge.training.clock import Clock
from segforge.training.device import configure_determinism, resolve_precision, set_threads
from segforge.training.params import TrainerParams
from segforge.training.pseudo_dice import PseudoDice
from segforge.training.run_controls import RunControls
from segforge.training.run_loss import build_run_loss, resolve_loss
from segforge.training.schedule import PolySchedule
from segforge.training.state import TrainingState

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

    from segforge.training.budget import BudgetController
    from segforge.training.run_log import TrainingLog
    from segforge.training.run_setup import RunContext


class DefaultTrainer(RunControls):
    """nnU-Net v2's default recipe: SGD (Nesterov, momentum 0.99, lr 1e-2, weight decay 3e-5), poly LR
    (exponent 0.9), 1000 epochs x 250 iterations, gradient clipping at 12, Dice+CE with deep supervision,
    fp16 AMP on CUDA / fp32 on CPU, EMA pseudo-Dice for the best checkpoint."""

    name: ClassVar[str] = "default"
    version: ClassVar[str] = "1.0"
    Params: ClassVar[type[TrainerParams]] = TrainerParams
    default_loss: ClassVar[str] = "dc_ce"

    def __init__(
        self,
        context: RunContext,
        params: TrainerParams,
        log: TrainingLog,
        *,
        device: torch.device,
        loss_params: dict[str, Any] | None = None,
        budget: BudgetController | None = None,
        clock: Clock | None = None,
        callbacks: Callbacks | None = None,
    ) -> None:
        self.context = context
        self.params = params
        self.log = log
        self.device = device
        self.budget = budget
        self.callbacks = callbacks if callbacks is not None else Callbacks()  # the run's --callback selection
        self.clock = clock or (budget.clock if budget is not None else Clock())
        self.loss_name = resolve_loss(context, type(self), params)  # the same choice the early check made
        self.loss_params = {**params.loss_params, **(loss_params or {})}
        self.precision = resolve_precision(params.precision, device, context.request.fp32)
        self.state = TrainingState()
        self.total_iterations = params.epochs * params.iterations_per_epoch
        self.final_pseudo_dice: list[float] | None = None
        self.dist = distributed.current()  # this process's rank under torchrun (world size 1 otherwise)

    # -- derived settings ----------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        return self.params.batch_size or self.context.configuration.batch_size

    @property
    def num_workers(self) -> int:
        if self.params.num_workers is not None:
            return 0 if self.context.request.deterministic else self.params.num_workers
        if self.device.type == "cpu" or self.context.request.deterministic:
            return 0  # on CPU, loader processes compete with torch's threads for the cores
        from segforge.training.device import available_cores

        return min(8, max(1, available_cores() - 1))

    @property
    def patch_size(self) -> list[int]:
        return list(self.context.configuration.patch_size)

    # -- set-up steps ----------------------------------------------------------------------
    def setup(self) -> None:
        """Seed, then build network, loss, optimizer, schedule and loaders (in that order)."""
        import torch

        from segforge.training.rng import seed_everything

        configure_determinism(self.context.request.deterministic)
        set_threads(self.params.threads)
        seed_everything(self.params.seed)
        self.network = self.build_network().to(self.device)
        self.model = self.dist.wrap(self.maybe_compile(self.network), self.device)
        self.loss = self.build_loss()
        self.optimizer = self.configure_optimizer()
        self.grad_scaler = torch.amp.GradScaler("cuda") if self.precision.use_grad_scaler else None
        self.schedule = self.make_schedule()
        self.train_loader, self.val_loader = self.make_loaders()

    def network_spec(self) -> dict[str, Any]:
        """The network as checkpoints and manifests record it: enough to rebuild it with no other file."""
        conf, entry = self.context.configuration, self.context.network_entry
        return {
            "name": conf.network.name,
            "version": entry.version,
            "params": dict(conf.network.params),
            "in_channels": self.context.in_channels,
            "num_classes": self.context.num_classes,
            "deep_supervision": self.params.deep_supervision,
            "origin": entry.origin.as_dict(),
        }

    def build_network(self) -> nn.Module:
        builder = self.context.network_entry.component
        params = builder.parse_params(self.context.configuration.network.params)
        return builder.build(params, self.context.in_channels, self.context.num_classes, self.params.deep_supervision)

    def maybe_compile(self, network: nn.Module) -> nn.Module:
        import torch

        if self.params.compile and self.device.type == "cuda":
            return torch.compile(network)
        if self.params.compile:
            self.log.warning("compile=true is only used on CUDA; training uncompiled on the CPU")
        return network

    @property
    def deep_supervision_scales(self) -> list[list[int]] | None:
        scales = getattr(self.network, "deep_supervision_scales", None)
        return [list(s) for s in scales] if scales and self.params.deep_supervision else None

    def build_loss(self) -> nn.Module:
        """The selected loss, wrapped in nnU-Net's deep-supervision weighting when the network has DS."""
        scales, dims = self.deep_supervision_scales, len(self.patch_size)
        return build_run_loss(self.context, self.loss_name, self.loss_params, scales, dims)

    def configure_optimizer(self) -> torch.optim.Optimizer:
        import torch

        p = self.params
        return torch.optim.SGD(
            self.network.parameters(),
            p.initial_lr,
            momentum=p.momentum,
            weight_decay=p.weight_decay,
            nesterov=p.nesterov,
        )

    def make_schedule(self) -> PolySchedule:
        p = self.params
        step = p.iterations_per_epoch if p.lr_step == "epoch" else 1
        return PolySchedule(p.initial_lr, self.total_iterations, p.poly_exponent, step, p.warmup_iterations)

    def make_loaders(self) -> tuple[Any, Any]:
        from segforge.data.loader import make_train_loader, make_val_loader
        from segforge.training.cascade import open_training_dataset  # a cascade adds previous-stage channels

        p, conf, ctx = self.params, self.context.configuration, self.context
        batch, oversample = distributed.split_batch(
            self.batch_size, p.oversample_foreground_percent, self.dist.world_size, self.dist.rank
        )  # this rank's share of the global batch (all of it in one process)
        common = {
            "patch_size": self.patch_size,
            "batch_size": batch,
            "deep_supervision_scales": self.deep_supervision_scales,
            "oversample_foreground_percent": oversample,
            "seed": self.dist.rank_seed(p.seed),
            "epoch": self.state.epoch,
            "num_workers": self.num_workers,
        }
        train = make_train_loader(
            open_training_dataset(ctx, ctx.train_ids),
            augmentation=p.augmentation,
            use_mask_for_norm=conf.use_mask_for_norm,
            num_batches=p.iterations_per_epoch,
            **common,
        )
        val = make_val_loader(open_training_dataset(ctx, ctx.val_ids), num_batches=p.val_iterations, **common)
        return train, val

    # -- per-iteration steps -----------------------------------------------------------------
    def lr_at(self, iteration: int) -> float:
        return self.schedule.lr_at(iteration)

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def to_device(self, batch: dict[str, Any]) -> tuple[torch.Tensor, Any]:
        non_blocking = self.device.type == "cuda"
        data = batch["data"].to(self.device, non_blocking=non_blocking)
        target = batch["target"]
        if isinstance(target, list):
            return data, [t.to(self.device, non_blocking=non_blocking) for t in target]
        return data, target.to(self.device, non_blocking=non_blocking)

    def forward(self, data: torch.Tensor, target: Any) -> Any:
        """The model's output; the first one is checked against the targets (a broken plugin network is named)."""
        from segforge.training.output_check import FirstForwardCheck

        if getattr(self, "_output_check", None) is None:
            self._output_check = FirstForwardCheck(self.context.network_entry, self.context.num_classes)
        return self._output_check.forward(self.model, data, target)

    def train_step(self, batch: dict[str, Any]) -> float:
        """Forward, loss, backward, clip, step; returns the loss value."""
        data, target = self.to_device(batch)
        self.optimizer.zero_grad(set_to_none=True)
        with self.precision.autocast():
            output = self.forward(data, target)
            loss = self.loss(output, target)
        if self.grad_scaler is not None:
            self.grad_scaler.scale(loss).backward()
            self.grad_scaler.unscale_(self.optimizer)
            self.clip_gradients()
            self.grad_scaler.step(self.optimizer)
            self.grad_scaler.update()
        else:
            loss.backward()
            self.clip_gradients()
            self.optimizer.step()
        return float(loss.detach())

    def clip_gradients(self) -> None:
        import torch

        if self.params.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.network.parameters(), self.params.grad_clip)

    def validation_step(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Loss and hard TP/FP/FN of the full-resolution output (nnU-Net's pseudo-Dice inputs)."""
        import torch

        from segforge.training.label_targets import validation_counts

        data, target = self.to_device(batch)
        with torch.no_grad(), self.precision.autocast():
            output = self.forward(data, target)
            loss = self.loss(output, target)
        top = output[0] if isinstance(output, (list, tuple)) else output
        top_target = target[0] if isinstance(target, list) else target
        tp, fp, fn = validation_counts(top.float(), top_target, self.context.label_scheme)
        return {"loss": float(loss), "tp": tp.numpy(), "fp": fp.numpy(), "fn": fn.numpy()}

    # -- per-epoch steps -------------------------------------------------------------------
    def train_batches(self, epoch: int, start: int) -> Iterator[dict[str, Any]]:
        """Batches ``start..`` of ``epoch``; a mid-epoch resume makes the missing ones in-process."""
        if start == 0:
            self.train_loader.set_epoch(epoch)
            yield from self.train_loader
            return
        for index in range(start, len(self.train_loader)):
            yield self.train_loader.batch(index, epoch)

    def val_batches(self, epoch: int, count: int) -> Iterator[dict[str, Any]]:
        """The first ``count`` validation batches of ``epoch`` (the loader's own when it has exactly that many)."""
        if count == len(self.val_loader):
            self.val_loader.set_epoch(epoch)
            yield from self.val_loader
            return
        for index in range(count):
            yield self.val_loader.batch(index, epoch)

    def validate(self, epoch: int, iterations: int | None = None) -> dict[str, Any]:
        """Run ``iterations`` (default ``val_iterations``) validation batches; mean loss and pseudo-Dice."""
        self.network.eval()
        dice = PseudoDice(self.context.label_scheme.num_scored)
        losses = []
        for batch in self.val_batches(epoch, iterations or self.params.val_iterations):
            result = self.validation_step(batch)
            losses.append(result["loss"])
            dice.add(result["tp"], result["fp"], result["fn"])
        self.network.train()
        if self.dist.active:  # every rank scores the union of all ranks' patches
            dice.tp, dice.fp, dice.fn = (self.dist.sum_array(a) for a in (dice.tp, dice.fp, dice.fn))
        loss = self.dist.mean(float(np.mean(losses)))
        return {"loss": loss, "dice": dice.per_class(), "mean_dice": dice.mean()}

    def on_epoch_start(self, epoch: int) -> None:
        self.network.train()
        self.log.line(f"epoch {epoch}: lr {self.lr_at(self.state.iteration):.6f}")

    def on_epoch_end(self, epoch: int, train_loss: float, val: dict[str, Any], epoch_time: float) -> None:
        """Log, update EMA, save best / latest checkpoints, draw the progress plot."""
        from segforge.training.progress_plot import plot_progress
        from segforge.training.pseudo_dice import ema
        from segforge.training.run_dir import PROGRESS_PNG

        state = self.state
        train_loss = self.dist.mean(train_loss)
        smoothed = ema(state.ema, val["mean_dice"], self.params.ema_keep)
        lr = self.optimizer.param_groups[0]["lr"]
        state.log_epoch(
            train_loss=train_loss,
            val_loss=val["loss"],
            pseudo_dice=val["dice"],
            ema_dice=smoothed,
            lr=lr,
            epoch_time=epoch_time,
            iterations=state.iteration,
        )
        dice = ", ".join(f"{d:.4f}" for d in val["dice"])
        self.log.line(
            f"epoch {epoch}: train loss {train_loss:.4f}, val loss {val['loss']:.4f}, pseudo Dice [{dice}], "
            f"EMA {smoothed:.4f}, {epoch_time:.1f} s"
        )
        state.epoch, state.iteration_in_epoch, state.partial_losses = epoch + 1, 0, []
        if state.is_new_best():
            self.log.line(f"new best EMA pseudo Dice {state.best_ema:.4f}")
            self.save_checkpoint(ckpt.BEST)
        if (epoch + 1) % self.params.checkpoint_every == 0 and not self.done():
            self.save_checkpoint(ckpt.LATEST)
        if ((epoch + 1) % self.params.plot_every == 0 or self.done()) and self.dist.is_main:
            plot_progress(self.context.fold_folder / PROGRESS_PNG, state.logs, self.log.warning)

    def done(self) -> bool:
        return self.state.finished or self.state.iteration >= self.total_iterations

    # -- checkpoints -----------------------------------------------------------------------
    def checkpoint_payload(self) -> dict[str, Any]:
        from segforge.training.rng import capture_rng_state
        from segforge.training.run_dir import plugin_versions

        return {
            "format_version": ckpt.CHECKPOINT_FORMAT_VERSION,
            "segforge_version": __version__,
            "network_weights": ckpt.plain_network_weights(self.network),
            "optimizer_state": self.optimizer.state_dict(),
            "grad_scaler_state": self.grad_scaler.state_dict() if self.grad_scaler is not None else None,
            "schedule": self.schedule.state_dict(),
            "progress": {**self.state.state_dict(), "elapsed_s": self.clock.elapsed(), "total": self.total_iterations},
            "logs": self.state.logs,
            "rng": capture_rng_state(),
            "seed": self.params.seed,
            "plans_json": self.context.plans.model_dump_json(),
            "configuration": self.context.configuration.name,
            "network": self.network_spec(),
            "trainer": {"name": self.name, "version": self.version, "params": self.params.model_dump(mode="json")},
            "loss": {"name": self.loss_name, "params": dict(self.loss_params)},
            "versions": {"segforge": __version__, "plugins": plugin_versions()},
            "budget": self.budget.state_dict() if self.budget is not None else None,
            "callbacks": self.callbacks.records(),  # restored on --continue
            "mirror_axes": self.mirror_axes(),
        }

    def mirror_axes(self) -> list[int]:
        """Spatial axes mirrored in training; prediction mirrors only these (nnU-Net's rule)."""
        aug = self.params.augmentation
        if not aug.enabled or aug.p_mirror_per_axis == 0:
            return []
        return list(range(len(self.patch_size))) if aug.mirror_axes is None else list(aug.mirror_axes)

    def save_checkpoint(self, name: str) -> None:
        """Rank 0 writes; under torchrun the others wait, so none exits before the file is complete."""
        if self.dist.is_main:
            started = time.perf_counter()
            ckpt.save_checkpoint(self.context.fold_folder / name, self.checkpoint_payload())
            self.log.line(f"saved {name} ({time.perf_counter() - started:.1f} s)")
            self.callbacks.emit(self, "checkpoint_saved", name=name, path=str(self.context.fold_folder / name))
        self.dist.barrier()

    def restore(self, payload: dict[str, Any]) -> None:
        """Continue from a checkpoint: weights, optimizer, scaler, schedule, counters, logs, RNG states."""
        from segforge.training.rng import restore_rng_state

        self.network.load_state_dict(payload["network_weights"])
        self.optimizer.load_state_dict(payload["optimizer_state"])
        if self.grad_scaler is not None and payload["grad_scaler_state"]:
            self.grad_scaler.load_state_dict(payload["grad_scaler_state"])
        self.load_schedule(payload["schedule"])  # make_schedule's kind, not always poly
        progress = payload["progress"]
        self.state = TrainingState.from_state({**progress, "logs": payload["logs"]})
        self.resize(int(progress.get("total", self.total_iterations)), retarget=False)
        self.clock.previous_s = float(progress.get("elapsed_s", 0.0))
        if self.budget is not None and payload.get("budget"):
            self.budget.load_state_dict(payload["budget"])
        restore_rng_state(payload["rng"])

    def load_pretrained(self, path: Any) -> None:
        """Initialise the network from another checkpoint's weights (matching names and shapes only)."""
        from segforge.training.pretrained import load_pretrained_weights

        loaded, skipped = load_pretrained_weights(self.network, path)
        self.log.line(f"pretrained weights from {path}: {loaded} tensors loaded, {len(skipped)} skipped")

    def write_manifest(self, status: str) -> None:
        from segforge.training.manifest import build_manifest
        from segforge.training.run_dir import write_manifest

        if not self.dist.is_main:
            return
        write_manifest(self.context.fold_folder, build_manifest(self, status))

    def fit(self, stop_after_epochs: int | None = None) -> Any:
        """Train until done (or for ``stop_after_epochs`` epochs of this session); see :mod:`.loop`."""
        from segforge.training.loop import run_training

        return run_training(self, stop_after_epochs)
