"""segforge's preprocessing against nnU-Net v2's DefaultPreprocessor, run here on the same inputs and plans.

Skipped unless nnunetv2 is importable (it is not a dependency): run it in an environment that has
both, e.g. ``.nox/peers/bin/python -m pytest tests/preprocessing/test_nnunet_parity.py``.

Tolerances: shapes, crop boxes, segmentations and sampled class locations must be *identical*;
normalized intensities may differ by at most :data:`DATA_ATOL` (segforge resamples in float32,
nnU-Net in float64; without resampling the values are bit-identical).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from segforge.config.plans import IntensityStats, Plans, ResamplingSpec
from segforge.io.image_io import ImageProperties
from segforge.preprocessing.preprocessor import CasePreprocessor

pytest.importorskip("nnunetv2")
from nnunetv2.preprocessing.preprocessors.default_preprocessor import DefaultPreprocessor  # noqa: E402
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager  # noqa: E402

#: largest allowed |segforge - nnU-Net| of a normalized intensity (z-score units)
DATA_ATOL = 1e-4
NNUNET_SCHEMES = {"zscore": "ZScoreNormalization", "ct": "CTNormalization", "none": "NoNormalization"}
LABELS = {"background": 0, "one": 1, "two": 2}


def nnunet_plans(plans: Plans) -> dict:
    """The same plans in nnU-Net v2's plans.json format (only what preprocessing reads)."""

    def resampling(spec: ResamplingSpec, seg: bool) -> dict:
        order, order_z = (spec.order_seg, spec.order_z_seg) if seg else (spec.order_data, spec.order_z_data)
        return {"is_seg": seg, "order": order, "order_z": order_z, "force_separate_z": spec.force_separate_z}

    configurations = {
        name: {
            "data_identifier": conf.data_identifier, "preprocessor_name": "DefaultPreprocessor",
            "batch_size": conf.batch_size, "patch_size": conf.patch_size, "spacing": conf.spacing,
            "median_image_size_in_voxels": conf.median_image_size_in_voxels,
            "normalization_schemes": [NNUNET_SCHEMES[n] for n in conf.normalization],
            "use_mask_for_norm": conf.use_mask_for_norm,
            "resampling_fn_data": "resample_data_or_seg_to_shape", "resampling_fn_seg": "resample_data_or_seg_to_shape",
            "resampling_fn_data_kwargs": resampling(conf.resampling, False),
            "resampling_fn_seg_kwargs": resampling(conf.resampling, True),
            "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
            "resampling_fn_probabilities_kwargs": resampling(conf.resampling, False),
            "architecture": {"network_class_name": "unused", "arch_kwargs": {}, "_kw_requires_import": []},
            "batch_dice": conf.batch_dice,
        }
        for name, conf in plans.configurations.items()
    }  # fmt: skip
    return {
        "dataset_name": plans.dataset_name, "plans_name": "nnUNetPlans",
        "original_median_spacing_after_transp": plans.original_median_spacing_after_transp,
        "original_median_shape_after_transp": plans.original_median_shape_after_transp,
        "image_reader_writer": "SimpleITKIO", "transpose_forward": plans.transpose_forward,
        "transpose_backward": plans.transpose_backward, "configurations": configurations,
        "experiment_planner_used": "ExperimentPlanner", "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {
            k: v.model_dump() for k, v in plans.foreground_intensity_properties_per_channel.items()
        },
    }  # fmt: skip


def compare(ours, theirs_data, theirs_seg, theirs_props) -> dict:
    """Assert parity of one case; returns the figures (printed with -s)."""
    p = ours.props
    assert ours.data.shape == theirs_data.shape, "data shape"
    assert ours.seg.shape == theirs_seg.shape, "seg shape"
    assert p.bbox == [tuple(b) for b in theirs_props["bbox_used_for_cropping"]]
    assert p.shape_before_cropping == list(theirs_props["shape_before_cropping"])
    assert p.shape_after_cropping == list(theirs_props["shape_after_cropping_and_before_resampling"])
    diff = float(np.abs(ours.data - theirs_data).max())
    assert diff <= DATA_ATOL, f"max |data diff| {diff}"
    seg_mismatch = int((ours.seg != theirs_seg).sum())
    assert seg_mismatch == 0, f"{seg_mismatch} segmentation voxels differ"
    for label, coords in theirs_props["class_locations"].items():
        np.testing.assert_array_equal(ours.class_locations[int(label)], np.asarray(coords).reshape(-1, 4)[:, 1:])
    return {"shape": ours.data.shape, "max_abs_diff": diff, "seg_mismatch": seg_mismatch}


def run_both(plans: Plans, conf_name: str, data, seg, spacing, case_id: str) -> dict:
    props = ImageProperties(
        spacing=spacing, origin=(0.0,) * 3, direction=(1, 0, 0, 0, 1, 0, 0, 0, 1), shape=data.shape[1:],
        itk_spacing=tuple(spacing[::-1]),
    )  # fmt: skip
    pre = CasePreprocessor(plans, [conf_name])
    ours = pre.run_arrays(data, seg, props, case_id)[plans.configurations[conf_name].data_identifier]
    manager = PlansManager(nnunet_plans(plans))
    seg_as_read = seg.astype(np.float32)  # nnU-Net's reader returns labels as float32
    theirs = DefaultPreprocessor(verbose=False).run_case_npy(
        data.copy(), seg_as_read, {"spacing": list(spacing)}, manager, manager.get_configuration(conf_name),
        {"labels": plans.labels, "channel_names": {"0": "x"}, "file_ending": ".nii.gz"},
    )  # fmt: skip
    return compare(ours, *theirs)


def _ellipsoid(shape, centre, radii) -> np.ndarray:
    grid = np.indices(shape, dtype=np.float32) / (np.array(shape, dtype=np.float32).reshape(3, 1, 1, 1) - 1)
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii, strict=True)) <= 1


def ct_case(shape, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Air at -1000 around a body of soft tissue with an organ (1) holding a lesion (2)."""
    rng = np.random.default_rng(seed)
    body = _ellipsoid(shape, (0.5, 0.5, 0.5), (0.6, 0.4, 0.45))
    organ = _ellipsoid(shape, (0.5, 0.45, 0.5), (0.3, 0.2, 0.2))
    lesion = _ellipsoid(shape, (0.5, 0.42, 0.5), (0.15, 0.08, 0.08))
    data = np.full(shape, -1000.0, dtype=np.float32)
    data[body] = rng.normal(40, 20, int(body.sum()))
    data[organ] = rng.normal(120, 25, int(organ.sum()))
    data[lesion] = rng.normal(220, 30, int(lesion.sum()))
    seg = np.zeros(shape, dtype=np.uint8)
    seg[organ] = 1
    seg[lesion] = 2
    return data[None], seg[None]


CT_STATS = IntensityStats(mean=150.0, median=130.0, std=60.0, min=25.0, max=346.0, percentile_00_5=71.0,
                          percentile_99_5=291.0)  # fmt: skip


def test_anisotropic_ct_case(make_conf, make_plans) -> None:
    """(5, 0.8, 0.8) -> (2.5, 0.8, 0.8): separate z (cubic in plane, nearest along z), ct normalization."""
    plans = make_plans(make_conf("3d_fullres", [2.5, 0.8, 0.8], normalization=["ct"]), labels=LABELS,
                       stats=CT_STATS)  # fmt: skip
    data, seg = ct_case((12, 72, 64))
    figures = run_both(plans, "3d_fullres", data, seg, (5.0, 0.8, 0.8), "ct_aniso")
    assert figures["shape"] == (1, 24, 72, 64)
    print("anisotropic CT", figures)


def test_anisotropic_ct_case_transposed_and_in_plane_resampled(make_conf, make_plans) -> None:
    """Thick axis last in the file (transpose_forward [2, 0, 1]) and a different in-plane spacing."""
    plans = make_plans(make_conf("3d_fullres", [2.5, 0.7, 0.75], normalization=["ct"]), labels=LABELS,
                       stats=CT_STATS, transpose=[2, 0, 1])  # fmt: skip
    data, seg = ct_case((60, 50, 10), seed=1)
    figures = run_both(plans, "3d_fullres", data, seg, (0.8, 0.8, 5.0), "ct_transposed")
    assert figures["shape"] == (1, 20, 69, 53)
    print("transposed CT", figures)


def test_isotropic_mri_case_with_mask(make_conf, make_plans) -> None:
    """Cubic 3D resampling (no separate z) of a z-scored image with the nonzero mask."""
    plans = make_plans(make_conf("3d_fullres", [1.0, 1.0, 1.0], use_mask=[True]), labels=LABELS)
    data, seg = ct_case((30, 36, 40), seed=2)
    data = np.where(data > -1000, data + 1000, 0).astype(np.float32)  # zero background: cropping applies
    figures = run_both(plans, "3d_fullres", data, seg, (1.5, 1.2, 1.0), "mri")
    print("isotropic MRI", figures)


def test_hippocampus_cases(hippocampus_msd: Path, make_conf, make_plans) -> None:
    """Real cases with nnU-Net's own image reading (run_case) against segforge's (run_files)."""
    plans = make_plans(make_conf("3d_fullres", [1.0, 1.0, 1.0]), labels={"background": 0, "Anterior": 1,
                       "Posterior": 2})  # fmt: skip
    manager = PlansManager(nnunet_plans(plans))
    pre = CasePreprocessor(plans, ["3d_fullres"])
    dataset_json = {"labels": plans.labels, "channel_names": {"0": "MRI"}, "file_ending": ".nii.gz"}
    for image in sorted((hippocampus_msd / "imagesTr").glob("hippocampus_*.nii.gz"))[:5]:
        label = hippocampus_msd / "labelsTr" / image.name
        ours = pre.run_files([image], label, image.name[:-7])["segforgePlans_3d_fullres"]
        theirs = DefaultPreprocessor(verbose=False).run_case(
            [str(image)], str(label), manager, manager.get_configuration("3d_fullres"), dataset_json
        )
        figures = compare(ours, *theirs)
        print(image.name, figures)
