"""Benchmark: training-batch loading on the real hippocampus data, segforge against nnU-Net v2.

Measures, for nnU-Net's hippocampus patch [40, 56, 40] and batch sizes 2 and 7:

1. loader only: batches/s of ``make_train_loader`` with ``num_workers`` 0, 1, 2 (the consumer
   does nothing but take batches);
2. while training: steps/s of a CPU training loop (generic_unet forward + backward + SGD on
   each batch, torch using every core) with ``num_workers`` 0, 1, 2 - on a machine with few
   cores, background workers compete with the training process, so this is the number that
   decides whether they help;
3. the peer: nnU-Net v2's ``nnUNetDataLoader`` with its default training transforms,
   in-process, on nnU-Net's own preprocessed copy of the dataset (only when ``nnunetv2`` is
   importable and the preprocessed folder exists, e.g. run with .nox/peers/bin/python, built by ``nox -s peers``).

The segforge cases are made here with a minimal preprocessing (crop to nonzero, z-score,
nnU-Net's class-location sampling; hippocampus is already at its 1 mm target spacing) so the
benchmark does not depend on the preprocessing command. Timed assertions do not belong in
unit tests; this script only reports::

    python benchmarks/data_loader.py [--cases 60] [--batches 40] [--train-steps 15] [--rounds 2]
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import numpy as np
from _paths import hippocampus_msd, nnunet_ref, work_dir

DEFAULT_MSD = hippocampus_msd()
NNUNET_PP = nnunet_ref() / "nnUNet_preprocessed" / "Dataset004_Hippocampus"
PATCH = (40, 56, 40)


# -- minimal preprocessing -----------------------------------------------------------------------
def sample_locations(seg: np.ndarray, labels: list[int], seed: int = 1234) -> dict[int, np.ndarray]:
    rs = np.random.RandomState(seed)
    out = {}
    for label in labels:
        hits = np.argwhere(seg == label).astype(np.int32)
        n = len(hits)
        k = max(min(10000, n), math.ceil(0.01 * n)) if n else 0
        out[label] = hits[rs.choice(n, k, replace=False)] if k else hits
    return out


def prepare_cases(msd: Path, out: Path, n_cases: int) -> list[str]:
    """Write the first ``n_cases`` training cases of an MSD task as segforge preprocessed cases."""
    import SimpleITK as sitk

    from segforge.data.case_store import CaseProperties, list_case_ids, write_case
    from segforge.io.image_io import ImageProperties
    from segforge.preprocessing.cropping import crop_to_nonzero

    images = sorted(p for p in (msd / "imagesTr").glob("*.nii.gz") if not p.name.startswith("."))[:n_cases]
    done = set(list_case_ids(out))
    ids = []
    for path in images:
        case_id = path.name[: -len(".nii.gz")]
        ids.append(case_id)
        if case_id in done:
            continue
        img = sitk.ReadImage(str(path))
        data = sitk.GetArrayFromImage(img).astype(np.float32)[None]
        seg = sitk.GetArrayFromImage(sitk.ReadImage(str(msd / "labelsTr" / path.name))).astype(np.int8)[None]
        data, seg, box = crop_to_nonzero(data, seg)
        data = ((data - data.mean()) / max(float(data.std()), 1e-8)).astype(np.float32)
        locs = sample_locations(seg[0], [1, 2])
        shape = list(data.shape[1:])
        spacing = [float(s) for s in img.GetSpacing()[::-1]]
        props = CaseProperties(
            case_id=case_id, digest="bench", preprocessing_version="bench", data_identifier="bench_3d",
            image=ImageProperties(spacing=tuple(spacing), origin=img.GetOrigin(), direction=img.GetDirection(),
                                  shape=tuple(img.GetSize()[::-1]), itk_spacing=img.GetSpacing()),
            transpose_forward=[0, 1, 2], original_spacing=spacing, shape_before_cropping=list(img.GetSize()[::-1]),
            bbox=[tuple(b) for b in box], shape_after_cropping=shape, spacing=spacing, shape_after_resampling=shape,
            num_channels=1, has_seg=True, class_location_counts={str(k): len(v) for k, v in locs.items()},
        )  # fmt: skip
        write_case(out, case_id, data, seg, props, locs)
    return ids


# -- measurements --------------------------------------------------------------------------------
def loader_rate(dataset, batch_size: int, workers: int, batches: int) -> float:
    from segforge.data.loader import make_train_loader

    ds_scales = [[1, 1, 1], [2, 2, 2], [4, 4, 4], [8, 8, 8]]
    with make_train_loader(dataset, patch_size=PATCH, batch_size=batch_size, deep_supervision_scales=ds_scales,
                           num_batches=batches, num_workers=workers, seed=1) as loader:  # fmt: skip
        next(iter(loader))  # workers started, caches warm
        loader.set_epoch(1)
        start = time.perf_counter()
        for _ in loader:
            pass
        return batches / (time.perf_counter() - start)


def make_net():
    import torch

    from segforge import build_network
    from segforge.networks.builder import TopologyRequest
    from segforge.plugins import get_registries

    builder = get_registries().network.get("generic_unet")
    params = builder.propose(TopologyRequest(PATCH, (1.0, 1.0, 1.0), 1, 3))
    net = build_network("generic_unet", params.model_dump(), in_channels=1, num_classes=3, deep_supervision=False)
    return net, torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.99, nesterov=True)


def training_rate(dataset, net_opt, batch_size: int, workers: int, steps: int) -> float:
    from segforge.data.loader import make_train_loader

    net, opt = net_opt
    with make_train_loader(dataset, patch_size=PATCH, batch_size=batch_size, num_batches=steps,
                           num_workers=workers, seed=1) as loader:  # fmt: skip
        _step(net, opt, next(iter(loader)))  # warm-up (and worker start) outside the timing
        loader.set_epoch(1)
        start = time.perf_counter()
        for batch in loader:
            _step(net, opt, batch)
        return steps / (time.perf_counter() - start)


def _step(net, opt, batch) -> None:
    import torch.nn.functional as F

    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(net(batch["data"]), batch["target"][:, 0])
    loss.backward()
    opt.step()


def nnunet_rate(batch_size: int, batches: int) -> float | None:
    """nnU-Net v2's in-process loader + default training transforms on its own preprocessed data."""
    try:
        from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader
        from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class
        from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
        from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
    except ImportError:
        return None
    import json

    folder = NNUNET_PP / "nnUNetPlans_3d_fullres"
    if not folder.is_dir():
        return None
    plans = PlansManager(str(NNUNET_PP / "nnUNetPlans.json"))
    labels = plans.get_label_manager(json.loads((NNUNET_PP / "dataset.json").read_text()))
    ds = infer_dataset_class(str(folder))(str(folder))
    rot = (-30.0 / 360 * 2 * np.pi, 30.0 / 360 * 2 * np.pi)
    from nnunetv2.training.data_augmentation.compute_initial_patch_size import get_patch_size

    initial = get_patch_size(PATCH, rot, rot, rot, (0.85, 1.25))
    ds_scales = [[1.0] * 3, [0.5] * 3, [0.25] * 3, [0.125] * 3]
    tr = nnUNetTrainer.get_training_transforms(PATCH, rot, ds_scales, (0, 1, 2), False)
    dl = nnUNetDataLoader(ds, batch_size, initial, PATCH, labels, 0.33, None, None, transforms=tr)
    next(dl)
    start = time.perf_counter()
    for _ in range(batches):
        next(dl)
    return batches / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--msd", type=Path, default=DEFAULT_MSD)
    ap.add_argument("--work", type=Path, default=work_dir("data_loader"))
    ap.add_argument("--cases", type=int, default=60)
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--train-steps", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=2, help="interleaved repetitions (the machine may be shared)")
    ap.add_argument("--no-train", action="store_true")
    args = ap.parse_args()

    import torch

    from segforge.data.dataset import PreprocessedDataset

    ids = prepare_cases(args.msd, args.work, args.cases)
    dataset = PreprocessedDataset(args.work, ids)
    threads = torch.get_num_threads()
    print(f"{len(ids)} hippocampus cases, patch {list(PATCH)}, {os.cpu_count()} CPUs, torch threads {threads}")
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    for bs in (2, 7):
        for r in range(args.rounds):
            peer = nnunet_rate(bs, args.batches)
            for workers in (0, 1, 2):
                rate = loader_rate(dataset, bs, workers, args.batches)
                ratio = f"  ({rate / peer:.2f}x nnU-Net v2 in-process: {peer:.1f} batches/s)" if peer else ""
                line = f"round {r} loader only    batch {bs}  workers {workers}: {rate:6.1f} batches/s{ratio}"
                print(line, flush=True)
    if not args.no_train:
        net_opt = make_net()
        for bs in (2, 7):
            for r in range(args.rounds):
                for workers in (0, 1, 2):
                    rate = training_rate(dataset, net_opt, bs, workers, args.train_steps)
                    print(f"round {r} while training batch {bs}  workers {workers}: {rate:6.3f} steps/s", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
