"""Window partitioning, the relative-position index and the shifted-window mask."""

from __future__ import annotations

import torch
from segforge_swinunet.attention import SwinBlock
from segforge_swinunet.windows import (
    bias_table_size,
    relative_position_index,
    shift_sizes,
    shifted_window_mask,
    window_partition,
    window_reverse,
)


def test_partition_and_reverse_are_inverse_and_windows_are_contiguous_blocks():
    x = torch.arange(2 * 4 * 6 * 8 * 3, dtype=torch.float32).view(2, 4, 6, 8, 3)
    windows = window_partition(x, (2, 3, 4))
    assert windows.shape == (2 * 2 * 2 * 2, 2 * 3 * 4, 3)
    assert torch.equal(window_reverse(windows, (2, 3, 4), (4, 6, 8)), x)
    # window 1 of sample 0 is the block [0:2, 0:3, 4:8] in raster order
    assert torch.equal(windows[1], x[0, 0:2, 0:3, 4:8].reshape(-1, 3))


def test_relative_position_index_shape_range_and_symmetry():
    window = (2, 3, 4)
    n = 2 * 3 * 4
    index = relative_position_index(window)
    assert index.shape == (n, n)
    assert bias_table_size(window) == 3 * 5 * 7
    assert int(index.min()) == 0 and int(index.max()) == bias_table_size(window) - 1
    center = (3 * 5 * 7 - 1) // 2  # offset (0, 0, 0)
    assert torch.equal(index.diagonal(), torch.full((n,), center))
    assert torch.equal(index + index.T, torch.full((n, n), 2 * center))  # offset and its negation


def test_relative_position_index_equal_offsets_share_an_entry():
    index = relative_position_index((3, 3))
    # token (0, 0) -> (1, 2) and token (1, 0) -> (2, 2) have the same offset (1, 2)
    assert index[0 * 3 + 0, 1 * 3 + 2] == index[1 * 3 + 0, 2 * 3 + 2]
    assert index[0, 5] != index[0, 7]  # offsets (1, 2) and (2, 1) differ


def test_shift_is_half_a_window_except_along_single_window_axes():
    assert shift_sizes((8, 4, 12), (4, 4, 3)) == (2, 0, 1)


def test_shifted_window_mask_on_a_tiny_map():
    # 4x4 map, 2x2 windows, shifted by 1: windows in raster order (0,0) (0,1) (1,0) (1,1)
    mask = shifted_window_mask((4, 4), (2, 2), (1, 1))
    assert mask.shape == (4, 4, 4) and mask.dtype == torch.bool
    assert not mask[0].any()  # an interior window: nothing wrapped
    # window (0,1): rows 0-1, columns 2 (not wrapped) and 3 (wrapped from column 0)
    expected_right = torch.tensor(
        [[0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0]], dtype=torch.bool
    )  # tokens in raster order (r0c2, r0c3, r1c2, r1c3)
    assert torch.equal(mask[1], expected_right)
    # window (1,1): four tokens from four different image corners: each attends only to itself
    assert torch.equal(mask[3], ~torch.eye(4, dtype=torch.bool))


def test_shifted_window_mask_matches_brute_force_wrapping():
    resolution, window, shift = (6, 8), (3, 4), (1, 2)
    mask = shifted_window_mask(resolution, window, shift)
    rows, cols = torch.meshgrid(torch.arange(6), torch.arange(8), indexing="ij")
    # after rolling by -shift, position r came from (r + s) mod R: it wrapped iff r + s >= R
    wrapped = torch.stack([rows + shift[0] >= 6, cols + shift[1] >= 8], dim=-1).long()
    code = window_partition((wrapped[..., 0] * 2 + wrapped[..., 1])[None, ..., None], window).squeeze(-1)
    assert torch.equal(mask, code[:, :, None] != code[:, None, :])


def _block(shifted: bool) -> SwinBlock:
    torch.manual_seed(0)
    block = SwinBlock(dim=8, num_heads=2, window=(4, 4), shifted=shifted, mlp_ratio=2.0, drop_path=0.0)
    with torch.no_grad():
        block.attn.relative_position_bias_table.normal_(0, 0.1)
    return block.eval()


def _changed_positions(block: SwinBlock, mask: torch.Tensor | None) -> torch.Tensor:
    """Which outputs change when the input token at (0, 0) changes."""
    x = torch.randn(1, 8, 8, 8)
    y = x.clone()
    y[0, 0, 0] += torch.randn(8)  # not a constant: LayerNorm would cancel that
    with torch.no_grad():
        return (block(x, mask) - block(y, mask)).abs().amax(-1)[0] > 1e-6


def test_shifted_block_never_mixes_tokens_that_wrapped_around():
    block = _block(shifted=True)
    mask = shifted_window_mask((8, 8), (4, 4), (2, 2))
    changed = _changed_positions(block, mask)
    # (0, 0) shares its shifted window with (0..1, 0..1) only; (7, 7) sits in the same rolled window but
    # came from the opposite corner of the image
    assert changed[:2, :2].all()
    assert int(changed.sum()) == 4
    assert not changed[7, 7]
    assert _changed_positions(block, None)[7, 7]  # without the mask the wrapped corner would leak


def test_regular_block_attends_within_its_window():
    changed = _changed_positions(_block(shifted=False), None)
    assert changed[:4, :4].all() and int(changed.sum()) == 16
