"""Fabricated probability folders and results trees for the ensembling and find-best-config tests.

A plain module (not conftest.py) so test files can import its names. Until end-of-training
validation exists everywhere, the trees are built here the way it writes them: per fold
``validation/CASE.nii.gz`` + ``CASE.npz``/``CASE.json`` (write_probabilities) + ``summary.json``
(evaluate_folder against the fold's reference cases).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from segforge.config.jsonio import save_model
from segforge.evaluation.evaluate_folder import evaluate_folder
from segforge.inference.export import ProbabilitiesInfo, write_probabilities
from segforge.io.image_io import ImageProperties, SimpleITKIO
from segforge.testing.synthetic import make_task

IO = SimpleITKIO()
LABELS = [0, 1, 2]
#: an anisotropic, shifted, rotated geometry, so "geometry preserved" means something
GEOMETRY = ImageProperties(
    spacing=(3.0, 0.7, 0.9), origin=(-12.5, 4.0, 100.25), direction=(0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0),
    shape=(3, 4, 5), itk_spacing=(0.9, 0.7, 3.0),
)  # fmt: skip


def write_probs(folder: Path, case_id: str, probs: np.ndarray, props: ImageProperties = GEOMETRY,
                labels: list[int] = LABELS, configuration: str = "3d_fullres") -> Path:  # fmt: skip
    """``folder/CASE.npz`` + ``.json`` for ``probs`` ``[C, *props.shape]``."""
    folder.mkdir(parents=True, exist_ok=True)
    info = ProbabilitiesInfo(case_id=case_id, labels=labels, shape=list(probs.shape[1:]), image=props,
                             plans_name="segforgePlans", configuration=configuration)  # fmt: skip
    npz, _ = write_probabilities(folder / f"{case_id}.npz", probs.astype(np.float16), info)
    return npz


def confident(seg: np.ndarray, wrong: np.ndarray | None = None, n_labels: int = 3) -> np.ndarray:
    """Probabilities whose argmax is ``seg``: 0.9 on the label where right, only 0.5 where ``wrong``.

    Where ``wrong`` is set the true label (``(seg - 1) % n``, see :func:`corrupt`) keeps 0.4, so a
    confident partner that is right there outvotes the mistake.
    """
    probs = np.full((n_labels, *seg.shape), 0.05, dtype=np.float32)
    np.put_along_axis(probs, seg[None].astype(np.int64), 0.9, axis=0)
    if wrong is not None:
        true = (seg.astype(np.int64) - 1) % n_labels
        probs[:, wrong] = 0.1
        for c in range(n_labels):
            probs[c][wrong & (seg == c)] = 0.5
            probs[c][wrong & (true == c)] = 0.4
    return probs


def corrupt(ref: np.ndarray, region: np.ndarray) -> np.ndarray:
    """``ref`` with every voxel of ``region`` moved to the next label (a wrong prediction)."""
    out = ref.copy()
    out[region] = (ref[region] + 1) % 3
    return out


def make_raw_task(raw_root: Path, n_cases: int = 4) -> Path:
    """A v1 Task folder with ``n_cases`` labelled cases (labels 0/1/2, anisotropic spacing)."""
    return make_task(raw_root / "Task099_Fake", n_cases=n_cases, shape=(10, 12, 11), seed=3)


def fabricate_run(run_dir: Path, labels_tr: Path, folds: dict[str, list[str]], region_fraction: tuple[float, float],
                  *, probabilities: bool = True) -> None:  # fmt: skip
    """Validation folders for ``folds`` (fold -> case ids); predictions wrong on a slab of the foreground.

    The slab is the foreground voxels whose x index lies between the given quantiles of the
    foreground's x indices, so two runs with disjoint slabs make different mistakes.
    """
    for fold, cases in folds.items():
        val = run_dir / f"fold_{fold}" / "validation"
        refs = run_dir / f"fold_{fold}" / "refs_for_test"
        val.mkdir(parents=True, exist_ok=True)
        refs.mkdir(parents=True, exist_ok=True)
        for case in cases:
            ref, props = IO.read_seg(labels_tr / f"{case}.nii.gz")
            ref = ref[0]
            xs = np.nonzero(ref)[2]
            lo, hi = np.quantile(xs, region_fraction)
            x = np.indices(ref.shape)[2]
            region = (ref > 0) & (x >= lo) & (x <= hi)
            pred = corrupt(ref, region)
            IO.write_seg(pred, val / f"{case}.nii.gz", props)
            if probabilities:
                write_probs(val, case, confident(pred, region), props, configuration=run_dir.parent.name)
            shutil.copy(labels_tr / f"{case}.nii.gz", refs / f"{case}.nii.gz")
        summary = evaluate_folder(refs, val, [1, 2], image_io=IO)
        shutil.rmtree(refs)
        cases = [c.model_copy(update={"reference_file": str(labels_tr / Path(c.reference_file).name)})
                 for c in summary.metric_per_case]  # fmt: skip
        save_model(
            val / "summary.json",
            summary.model_copy(update={"reference_folder": str(labels_tr), "metric_per_case": cases}),
        )  # as validation names labelsTr
