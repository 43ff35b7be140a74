"""Poly LR values (nnU-Net's per-epoch schedule and the per-iteration one), retargeting, warm-up, cosine."""

from __future__ import annotations

import pytest

from segforge.training.schedule import PolySchedule, poly_lr, warmup_cosine_lr


def test_poly_lr_values():
    assert poly_lr(0.01, 0.0) == 0.01
    assert poly_lr(0.01, 0.5) == pytest.approx(0.01 * 0.5**0.9)
    assert poly_lr(0.01, 1.0) == 0.0
    assert poly_lr(0.01, 1.5) == 0.0  # clipped


def test_per_epoch_schedule_reproduces_nnunet():
    # nnU-Net: lr(epoch) = 0.01 * (1 - epoch / 1000) ** 0.9, constant within an epoch of 250 iterations
    schedule = PolySchedule(0.01, total=1000 * 250, step_every=250)
    for epoch in (0, 1, 10, 500, 999):
        expected = 0.01 * (1 - epoch / 1000) ** 0.9
        assert schedule.lr_at(epoch * 250) == pytest.approx(expected)
        assert schedule.lr_at(epoch * 250 + 249) == pytest.approx(expected)
    assert schedule.lr_at(1) == 0.01


def test_per_iteration_schedule_reaches_zero_at_the_end():
    schedule = PolySchedule(0.02, total=100)
    assert schedule.lr_at(0) == 0.02
    assert schedule.lr_at(50) == pytest.approx(0.02 * 0.5**0.9)
    assert schedule.lr_at(100) == 0.0


def test_retarget_keeps_the_lr_continuous_and_ends_at_the_new_total():
    schedule = PolySchedule(0.01, total=100)
    before = schedule.lr_at(40)
    schedule.retarget(40, 70)  # less time than planned: 30 iterations left instead of 60
    assert schedule.lr_at(40) == pytest.approx(before)
    assert schedule.progress(55) == pytest.approx(0.4 + 0.6 * 15 / 30)
    assert schedule.lr_at(70) == 0.0
    assert schedule.lr_at(69) > 0.0
    restored = PolySchedule.from_state(schedule.state_dict())
    assert restored.lr_at(55) == schedule.lr_at(55)


def test_linear_warmup_then_poly():
    schedule = PolySchedule(0.01, total=100, warmup=10, warmup_start_factor=0.1)
    assert schedule.lr_at(0) == pytest.approx(0.001)
    assert schedule.lr_at(5) == pytest.approx(0.01 * (1 - 0.05) ** 0.9 * 0.55)
    assert schedule.lr_at(10) == pytest.approx(0.01 * 0.9**0.9)


def test_warmup_cosine_for_plugin_trainers():
    assert warmup_cosine_lr(1e-3, 0, 100, warmup=10) == pytest.approx(1e-4)
    assert warmup_cosine_lr(1e-3, 10, 100, warmup=10) == pytest.approx(1e-3)
    assert warmup_cosine_lr(1e-3, 55, 100, warmup=10) == pytest.approx(5e-4)
    assert warmup_cosine_lr(1e-3, 100, 100, warmup=10) == pytest.approx(0.0)
