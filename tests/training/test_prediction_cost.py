"""How many forward passes and export seconds the predictions after training need (what a budget reserves)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from segforge_tiny_task import DATASET

from segforge.data.case_store import list_case_ids, read_properties
from segforge.training import prediction_cost
from segforge.training.prediction_cost import end_prediction_cost, tiles_per_case


@pytest.mark.parametrize(
    ("shape", "patch", "tiles"),
    [
        ([110, 64], (64, 64), 3),  # 0, 23, 46 along the first axis (tests/inference/test_tiling.py)
        ([110, 64, 64], (64, 64, 64), 3),
        ([110, 110, 64], (64, 64, 64), 9),
        ([10, 12, 8], (16, 16, 16), 1),  # smaller than the patch: padded to one tile
        ([5, 110, 64], (64, 64), 15),  # a 2D patch walks the 5 slices
    ],
)
def test_tiles_per_case_hand_values(shape, patch, tiles):
    assert tiles_per_case(shape, patch) == tiles


def _trainer(data_folder, val_ids, train_ids, *, mirror, next_stage=None, run_validation=True, patch=(8, 8, 8)):
    context = SimpleNamespace(
        data_folder=data_folder, val_ids=val_ids, train_ids=train_ids, fold=0, num_classes=3,
        configuration=SimpleNamespace(next_stage=next_stage),
    )  # fmt: skip
    return SimpleNamespace(
        context=context,
        patch_size=patch,
        mirror_axes=lambda: mirror,
        params=SimpleNamespace(run_validation=run_validation),
    )


def test_cost_counts_tiles_flips_and_cases_from_the_preprocessed_properties(prepared_task):
    folder = next((prepared_task / "pre" / DATASET).glob("*3d_fullres*"))
    cases = list_case_ids(folder)
    shapes = {c: read_properties(folder, c).shape_after_resampling for c in cases}
    val, train = cases[:2], cases[2:]
    plain = end_prediction_cost(_trainer(folder, val, train, mirror=[]))
    assert plain.cases == 2
    assert plain.forward_passes == sum(tiles_per_case(shapes[c], (8, 8, 8)) for c in val) > 2
    mirrored = end_prediction_cost(_trainer(folder, val, train, mirror=[0, 1, 2]))
    assert mirrored.forward_passes == 8 * plain.forward_passes
    assert plain.seconds(0.5) == pytest.approx(0.5 * plain.forward_passes + plain.export_s)
    assert plain.export_s >= 2 * prediction_cost.CASE_OVERHEAD_S
    # a lowres stage also predicts the next stage's inputs (its validation cases again)
    lowres = end_prediction_cost(_trainer(folder, val, train, mirror=[], next_stage="3d_cascade_fullres"))
    assert lowres.cases == 4 and lowres.forward_passes == 2 * plain.forward_passes
    off = end_prediction_cost(_trainer(folder, val, train, mirror=[], run_validation=False))
    assert (off.cases, off.forward_passes, off.seconds(1.0)) == (0, 0, 0.0)


def test_a_pass_is_priced_by_timing_the_network_as_prediction_runs_it():
    import torch

    network = torch.nn.Conv3d(1, 3, 3, padding=1)
    network.train()
    trainer = SimpleNamespace(patch_size=(8, 8, 8), context=SimpleNamespace(in_channels=1),
                              device=torch.device("cpu"), network=network)  # fmt: skip
    rng = torch.get_rng_state()
    seconds = prediction_cost.time_patch_forward(trainer)
    assert seconds > 0
    assert network.training, "the network goes back to training mode"
    assert torch.equal(torch.get_rng_state(), rng), "a deterministic run must not see the timing"
    assert network.weight.grad is None  # no gradients
