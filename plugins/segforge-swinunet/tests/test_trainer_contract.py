"""segforge's trainer contract kit checks swin_adamw: its steps, schedule, a train step, restore and a short fit."""

from __future__ import annotations

from segforge_swinunet.trainer import SwinAdamWTrainer

from segforge.testing import TrainerContract


class TestSwinAdamWTrainer(TrainerContract):
    trainer_class = SwinAdamWTrainer
    overrides = {"warmup_fraction": 0.5}  # the 2-iteration run both warms up and decays
