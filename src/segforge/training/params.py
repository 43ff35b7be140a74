"""The default trainer's ``Params``: nnU-Net v2's recipe as validated, JSON-able settings.

Every field can be changed from the command line (``--set initial_lr=0.02``,
``--set augmentation.p_rot=0.1``, ``--set budget.batch_size=4``) instead of writing one
trainer subclass per value as nnU-Net does. Plugin trainers subclass :class:`TrainerParams`
to add their own fields (unknown keys are errors, so typos never pass silently).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from segforge.data.augmentation import AugmentationParams

Precision = Literal["auto", "fp32", "bf16", "fp16"]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class BudgetParams(_Params):
    """How ``--time-budget`` trains (CPU choices are measured on this machine at start-up).

    Defaults come from measurements on a 2-core AVX-512 CPU with the hippocampus data (see
    :mod:`segforge.training.budget`). They apply only with ``--time-budget``.
    """

    batch_size: int | None = Field(
        2, ge=1, description="3D batch size in budget mode (CPU; CUDA keeps the planned one unless set); None = planned"
    )
    batch_size_2d: int | None = Field(
        16, ge=1, description="2D batch size in budget mode (slices are small: more per step); None = as planned"
    )
    min_iterations: int = Field(
        250, ge=1, description="optimizer steps a 3D run needs to converge: fewer -> a cheaper configuration/network"
    )
    min_iterations_2d: int = Field(
        1000, ge=1, description="the same for a 2D run (a 2D sample is one slice: about four times the steps)"
    )
    train_share: float = Field(
        0.8, gt=0, le=1, description="share of the budget expected for training steps when choosing what to train"
    )
    probe_share: float = Field(
        0.05, gt=0, le=0.5, description="at most this share of the budget is spent measuring speed"
    )
    adapt_network: bool = Field(True, description="a short budget may halve the network width (features_per_stage)")
    adapt_patch: bool = Field(True, description="a short budget may shrink the patch (after halving the width)")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="CPU: auto = time fp32 and bf16 autocast, keep bf16 if >= min_bf16_speedup faster"
    )
    min_bf16_speedup: float = Field(1.2, ge=1.0)
    measure_iterations: int = Field(4, ge=2, description="timed training iterations before sizing the schedule")
    iterations_per_epoch: int | None = Field(
        None, ge=1, description="None = from the expected steps: 50 for short runs up to 250 for long ones"
    )
    val_iterations: int = Field(8, ge=1, description="validation batches per epoch (pseudo-Dice EMA)")
    final_val_iterations: int = Field(30, ge=0, description="validation batches at the end (reported Dice)")
    reserve_s: float = Field(2.0, ge=0, description="seconds kept free at the end besides the measured final costs")
    safety_fraction: float = Field(0.01, ge=0, le=0.5, description="share of the budget kept free for jitter")
    initial_lr: float | None = Field(None, gt=0, description="None = the trainer's initial_lr")
    warmup_iterations: int = Field(0, ge=0, description="linear LR warm-up at the start")
    augmentation: Literal["auto", "default", "light", "mirror", "off"] = Field(
        "auto",
        description="auto: off under 1000 expected steps, light under 5000, else default; light: every "
        "probability halved; mirror: mirroring only; off: none (and no mirroring TTA)",
    )
    memory_reuse: bool = Field(True, description="CPU: keep freed memory in the allocator (fewer page faults)")
    ema_keep: float = Field(0.5, ge=0, lt=1, description="pseudo-Dice EMA weight (few epochs: follow faster)")
    replan: bool = Field(True, description="re-size the schedule after each epoch from the measured speed")


class TrainerParams(_Params):
    """nnU-Net v2's ``nnUNetTrainer`` defaults."""

    epochs: int = Field(1000, ge=1)
    iterations_per_epoch: int = Field(250, ge=1)
    val_iterations: int = Field(50, ge=1)
    initial_lr: float = Field(1e-2, gt=0)
    weight_decay: float = Field(3e-5, ge=0)
    momentum: float = Field(0.99, ge=0, lt=1)
    nesterov: bool = True
    poly_exponent: float = Field(0.9, ge=0)
    lr_step: Literal["epoch", "iteration"] = Field("epoch", description="nnU-Net updates the LR once per epoch")
    warmup_iterations: int = Field(0, ge=0)
    grad_clip: float | None = Field(12.0, gt=0, description="max gradient norm; None = no clipping")
    oversample_foreground_percent: float = Field(0.33, ge=0, le=1)
    batch_size: int | None = Field(None, ge=1, description="None = as planned")
    num_workers: int | None = Field(None, ge=0, description="data loading processes; None = 0 on CPU, up to 8 on GPU")
    threads: int | None = Field(None, ge=1, description="torch CPU threads; None = torch's default")
    ema_keep: float = Field(0.9, ge=0, lt=1, description="pseudo-Dice EMA: keep * previous + (1 - keep) * new")
    final_val_iterations: int = Field(0, ge=0, description="validation batches after the last epoch (reported)")
    checkpoint_every: int = Field(50, ge=1, description="epochs between checkpoint_latest.pt saves")
    plot_every: int = Field(1, ge=1, description="epochs between progress.png updates")
    run_validation: bool = Field(
        True, description="after training, predict the validation cases with the full predictor (validation/)"
    )
    deep_supervision: bool = True
    loss: str | None = Field(None, description="registered loss; None = the trainer's default (dc_ce)")
    loss_params: dict[str, Any] = Field(default_factory=dict)
    augmentation: AugmentationParams = Field(default_factory=AugmentationParams)
    precision: Precision = Field("auto", description="auto: fp16 AMP + GradScaler on CUDA, fp32 on CPU")
    compile: bool = Field(False, description="torch.compile the network (CUDA only)")
    seed: int = Field(12345, ge=0)
    budget: BudgetParams = Field(default_factory=BudgetParams)
