"""Plans, raw images and checkpoints built in code for inference tests (no planner or trainer run).

Imported by tests/inference and tests/cli/test_predict_evaluate.py (a plain module, not a conftest,
so the two folders' conftest files cannot shadow it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from segforge.config.plans import ConfigurationPlan, IntensityStats, NetworkSpec, Plans, ResamplingSpec
from segforge.testing.plans import plans_for

STATS = IntensityStats(mean=50.0, median=50.0, std=20.0, min=0.0, max=200.0, percentile_00_5=1.0, percentile_99_5=150.0)
TINY_UNET = {
    "features_per_stage": [4, 8],
    "kernel_sizes": [[3, 3, 3], [3, 3, 3]],
    "strides": [[1, 1, 1], [2, 2, 2]],
    "n_conv_per_stage": [1, 1],
    "n_conv_per_stage_decoder": [1],
}


def make_plans(
    spacing: Sequence[float],
    *,
    transpose: Sequence[int] = (0, 1, 2),
    patch: Sequence[int] = (8, 8, 8),
    labels: dict[str, int] | None = None,
    name: str = "3d_fullres",
    network_params: dict | None = None,
    dataset: str = "Task099_Test",
) -> Plans:
    conf = ConfigurationPlan(
        name=name,
        data_identifier=f"segforgePlans_{name}",
        spacing=list(spacing),
        patch_size=list(patch),
        batch_size=2,
        median_image_size_in_voxels=[float(p) for p in patch],
        normalization=["zscore"],
        use_mask_for_norm=[False],
        resampling=ResamplingSpec(),
        network=NetworkSpec(name="generic_unet", version="1.0", params=network_params or TINY_UNET),
    )
    return plans_for(
        conf, stats=STATS, transpose=transpose, labels=labels, dataset=dataset, median_shape=(16.0, 16.0, 16.0)
    )


def write_image(path: Path, array: np.ndarray, spacing_zyx, origin=(3.0, -2.0, 7.5), direction=None) -> Path:
    """A NIfTI of ``array`` (z, y, x) with the given geometry (direction in ITK order, row-major 3x3)."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(array)
    image.SetSpacing([float(s) for s in spacing_zyx[::-1]])
    image.SetOrigin(origin)
    if direction is not None:
        image.SetDirection(direction)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path), True)
    return path


def write_checkpoint(
    fold_dir: Path,
    plans: Plans,
    *,
    name: str = "checkpoint_final.pt",
    seed: int = 0,
    network: dict | None = None,
    mirror_axes: list[int] | None = None,
) -> Path:
    """A checkpoint with the keys and layout ``segforge train`` writes, holding a freshly built network."""
    import torch

    from segforge.networks.generic_unet import GenericUNetBuilder
    from segforge.training.checkpoint import CHECKPOINT_FORMAT_VERSION, CHECKPOINT_KEYS, save_checkpoint

    conf = next(iter(plans.configurations.values()))
    torch.manual_seed(seed)
    n_classes = len(plans.labels)
    net = GenericUNetBuilder().build(conf.network.params, 1, n_classes, deep_supervision=True)
    spec = network or {
        "name": "generic_unet", "version": "1.0", "params": dict(conf.network.params), "in_channels": 1,
        "num_classes": n_classes, "deep_supervision": True,
        "origin": {"plugin": "builtin.networks", "dist": "segforge", "version": "0", "builtin": True},
    }  # fmt: skip
    payload = {key: None for key in CHECKPOINT_KEYS}
    payload.update(
        format_version=CHECKPOINT_FORMAT_VERSION, segforge_version="0", network_weights=net.state_dict(),
        optimizer_state={}, schedule={}, progress={"iteration": 2}, logs={}, rng={}, seed=seed,
        plans_json=plans.model_dump_json(), configuration=conf.name, network=spec,
        trainer={"name": "default", "version": "1.0",
                 "params": {"augmentation": {"mirror_axes": mirror_axes}} if mirror_axes is not None else {}},
        loss={"name": "dc_ce", "params": {}}, versions={"segforge": "0", "plugins": []},
    )  # fmt: skip
    path = fold_dir / name
    fold_dir.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, payload)
    return path
