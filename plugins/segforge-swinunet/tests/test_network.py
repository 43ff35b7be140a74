"""The swin_unet module: deep-supervision outputs and switch, input checks, weights and memory estimate."""

from __future__ import annotations

import pytest
import torch
from segforge_swinunet.builder import SwinUNetBuilder
from torch import nn

from segforge.errors import ConfigError
from segforge.networks.memory import estimate_training_memory

BUILDER = SwinUNetBuilder()
SMALL_3D = {"embed_dim": 12, "depths": [2, 2, 1], "num_heads": [3, 6, 12], "window_size": [2, 2, 2]}


def _net(params: dict, deep_supervision: bool = True) -> nn.Module:
    torch.manual_seed(0)
    return BUILDER.build(params, 1, 3, deep_supervision)


def test_deep_supervision_outputs_full_resolution_first_with_anisotropic_embedding():
    net = _net({**SMALL_3D, "patch_size": [1, 2, 2]})
    patch = tuple(BUILDER.constraints(BUILDER.parse_params({**SMALL_3D, "patch_size": [1, 2, 2]})).divisors)
    assert patch == (8, 16, 16)
    outputs = net(torch.randn(2, 1, *patch))
    assert net.deep_supervision_scales == [[1, 1, 1], [1, 2, 2], [2, 4, 4]]
    assert [list(o.shape) for o in outputs] == [[2, 3, 8, 16, 16], [2, 3, 8, 8, 8], [2, 3, 4, 4, 4]]


def test_switching_deep_supervision_off_gives_one_tensor_and_one_scale():
    net = _net(SMALL_3D)
    with_ds = net(torch.zeros(1, 1, 16, 16, 16))
    net.deep_supervision = False
    without = net(torch.zeros(1, 1, 16, 16, 16))
    assert isinstance(without, torch.Tensor) and without.shape == (1, 3, 16, 16, 16)
    assert net.deep_supervision_scales == [[1, 1, 1]]
    assert torch.equal(without, with_ds[0])


def test_weights_trained_with_deep_supervision_load_without_it():
    state = _net(SMALL_3D, deep_supervision=True).state_dict()
    assert not any("relative_position_index" in key for key in state)  # derived, not saved
    plain = BUILDER.build(SMALL_3D, 1, 3, deep_supervision=False)
    assert plain.load_state_dict(state, strict=True)
    assert torch.equal(plain.heads[0].weight, state["heads.0.weight"])


def test_2d_network_outputs():
    params = {"dims": 2, "embed_dim": 12, "depths": [1, 1, 1], "num_heads": [3, 3, 3], "window_size": 3}
    outputs = _net(params)(torch.randn(1, 1, 24, 48))
    assert [list(o.shape) for o in outputs] == [[1, 3, 24, 48], [1, 3, 12, 24], [1, 3, 6, 12]]


def test_input_off_the_divisor_is_a_one_line_error():
    with pytest.raises(ConfigError) as excinfo:
        _net(SMALL_3D)(torch.zeros(1, 1, 16, 20, 16))
    assert (
        excinfo.value.message
        == "swin_unet input of spatial shape [16, 20, 16] is not a multiple of [16, 16, 16] per axis"
    )
    assert "round_up" in excinfo.value.hint


def test_stages_double_channels_and_halve_resolution():
    net = _net(SMALL_3D)
    skips = net.encoder(torch.zeros(1, 1, 32, 16, 16))
    assert [list(s.shape) for s in skips] == [[1, 12, 16, 8, 8], [1, 24, 8, 4, 4], [1, 48, 4, 2, 2]]


def _saved_bytes(params: dict, patch: tuple[int, ...], batch: int) -> int:
    """What a real CPU step keeps for backward (unique storages) plus 4 fp32 copies of the weights."""
    net = _net(params)
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if not isinstance(t, nn.Parameter):
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        outputs = net(torch.randn(batch, 1, *patch))
    sum(o.pow(2).mean() for o in outputs).backward()
    return sum(storages.values()) + 16 * sum(p.numel() for p in net.parameters())


def test_meta_memory_estimate_counts_attention_and_matches_a_real_step():
    params = {"embed_dim": 12, "depths": [2, 2], "num_heads": [3, 6], "window_size": [4, 4, 4]}
    estimate = estimate_training_memory(BUILDER, BUILDER.parse_params(params), (16, 16, 16), 1, 3, 2)
    assert 0.8 < estimate / _saved_bytes(params, (16, 16, 16), 2) < 1.25  # measured: 0.96
    bigger_window = {**params, "window_size": [8, 8, 8]}  # 8x more keys per query: larger attention maps
    assert estimate_training_memory(BUILDER, BUILDER.parse_params(bigger_window), (32, 32, 32), 1, 3, 2) > 2 * (
        estimate_training_memory(BUILDER, BUILDER.parse_params(params), (32, 32, 32), 1, 3, 2)
    )
