"""swin_adamw: AdamW with decay on weights only, warm-up then cosine LR by schedule progress, grad clip 1.0."""

from __future__ import annotations

import math

import pytest
import torch
from segforge_swinunet.builder import SwinUNetBuilder
from segforge_swinunet.trainer import SwinAdamWParams, SwinAdamWTrainer, decay_groups, warmup_cosine

from segforge.training.schedule import PolySchedule


def test_params_defaults_are_the_transformer_recipe():
    p = SwinAdamWParams()
    assert (p.initial_lr, p.weight_decay, p.grad_clip, p.lr_step, p.warmup_fraction) == (
        3e-4,
        1e-2,
        1.0,
        "iteration",
        0.05,
    )
    assert SwinAdamWParams.model_validate_json(p.model_dump_json()) == p
    assert SwinAdamWTrainer.name == "swin_adamw" and SwinAdamWTrainer.Params is SwinAdamWParams
    assert SwinUNetBuilder.recommended_trainer == SwinAdamWTrainer.name


def test_warmup_then_cosine_values():
    peak = 3e-4
    assert warmup_cosine(0.0, peak, 0.05, 0.01, 0.0) == pytest.approx(3e-6)
    assert warmup_cosine(0.025, peak, 0.05, 0.01, 0.0) == pytest.approx(peak * (0.01 + 0.99 * 0.5))
    assert warmup_cosine(0.05, peak, 0.05, 0.01, 0.0) == pytest.approx(peak)
    middle = 0.05 + 0.95 / 2
    assert warmup_cosine(middle, peak, 0.05, 0.01, 0.0) == pytest.approx(peak / 2)
    assert warmup_cosine(1.0, peak, 0.05, 0.01, 1e-6) == pytest.approx(1e-6)
    assert warmup_cosine(0.3, peak, 0.0, 0.01, 0.0) == pytest.approx(peak * 0.5 * (1 + math.cos(math.pi * 0.3)))


def _bare_trainer(total: int) -> SwinAdamWTrainer:
    """The trainer's optimizer and LR steps only (no run context needed for them)."""
    trainer = SwinAdamWTrainer.__new__(SwinAdamWTrainer)
    trainer.params = SwinAdamWParams()
    trainer.network = SwinUNetBuilder().build({"embed_dim": 12, "depths": [1, 1], "num_heads": [3, 3]}, 1, 3)
    trainer.schedule = PolySchedule(trainer.params.initial_lr, total)
    return trainer


def test_optimizer_is_adamw_without_decay_on_biases_norms_and_bias_tables():
    trainer = _bare_trainer(100)
    optimizer = trainer.configure_optimizer()
    assert isinstance(optimizer, torch.optim.AdamW)
    decayed, plain = optimizer.param_groups
    assert (decayed["weight_decay"], plain["weight_decay"], decayed["lr"]) == (1e-2, 0.0, 3e-4)
    names = {id(p): n for n, p in trainer.network.named_parameters()}
    plain_names = {names[id(p)] for p in plain["params"]}
    decayed_names = {names[id(p)] for p in decayed["params"]}
    assert "encoder.stages.0.blocks.0.attn.relative_position_bias_table" in plain_names
    assert "encoder.stages.0.blocks.0.norm1.weight" in plain_names and "heads.0.bias" in plain_names
    assert "encoder.stages.0.blocks.0.attn.qkv.weight" in decayed_names and "stem.0.weight" in decayed_names
    assert len(plain_names) + len(decayed_names) == len(names)


def test_lr_follows_schedule_progress_and_stays_continuous_when_retargeted():
    trainer = _bare_trainer(1000)
    assert trainer.lr_at(0) == pytest.approx(3e-6)
    assert trainer.lr_at(50) == pytest.approx(3e-4)
    before = trainer.lr_at(400)
    trainer.schedule.retarget(400, 2000)  # a --time-budget run found time for more iterations
    assert trainer.lr_at(400) == pytest.approx(before)
    assert trainer.lr_at(2000) == pytest.approx(0.0, abs=1e-12)


def test_decay_groups_skip_frozen_parameters():
    net = torch.nn.Linear(3, 2)
    net.bias.requires_grad_(False)
    groups = decay_groups(net, 0.5)
    assert [len(g["params"]) for g in groups] == [1, 0]
