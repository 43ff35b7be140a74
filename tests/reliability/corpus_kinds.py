"""The kinds of the bad-input corpus: what is broken, the command that meets it, what segforge must say.

Each entry is a :class:`corpus.BadInput`; the helpers that break a workspace live in
:mod:`corpus`. ``docs/reliability.md`` has one table row per entry (a test checks it).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from corpus import (
    FINGERPRINT,
    PREDICT,
    PREPROCESS,
    TASK,
    TRAIN,
    VERIFY,
    BadInput,
    Workspace,
    change_image,
    checkpoint_from_missing_plugin,
    checkpoint_from_other_network,
    conf3d,
    dataset_json,
    drop_label,
    edit_json,
    flip_byte,
    image,
    image_and_label,
    label,
    label_from_other_dataset,
    missing_second_channel,
    no_channel_suffix,
    second_channel_dataset,
    shear_sform,
    short_payload,
    splits,
    stray_image_without_label,
    truncate,
    unwritable_output,
    with_value,
    wrong_channel_suffix,
)
from corpus_dicom import DICOM
from corpus_import import IMPORTS
from corpus_natural import NATURAL


def _no_change(ws: Workspace) -> None:
    return None


# -- the corpus ----------------------------------------------------------------------------------
def _ds(i: str, d: str, change: Callable[[dict], Any], expect: str) -> BadInput:
    return BadInput(i, "dataset.json", d, dataset_json(change), VERIFY, expect)


def _pop(key: str) -> Callable[[dict], None]:
    return lambda d: d.pop(key)


def _dup(d: dict) -> None:
    d["training"].append(d["training"][0])
    d["numTraining"] += 1


DATASET_JSON = [
    _ds("ds-missing-labels", "no 'labels' key", _pop("labels"), "dataset.json: labels: Field required"),
    _ds(
        "ds-missing-channels",
        "neither 'modality' nor 'channel_names'",
        _pop("modality"),
        "dataset.json: missing 'channel_names'",
    ),
    _ds(
        "ds-numtraining-string",
        "numTraining is a string",
        lambda d: d.update(numTraining="4"),
        "dataset.json: numTraining",
    ),
    _ds(
        "ds-labels-gap",
        "label values 0, 1, 3",
        lambda d: d.update(labels={"0": "background", "1": "a", "3": "b"}),
        "consecutive 0..3; missing [2]",
    ),
    _ds("ds-labels-list", "labels is a list", lambda d: d.update(labels=["background", "a"]), "dataset.json: labels"),
    _ds(
        "ds-no-background",
        "labels without 0",
        lambda d: d.update(labels={"1": "a", "2": "b"}),
        "background with value 0",
    ),
    _ds("ds-duplicate-ids", "a training case listed twice", _dup, "case 'case_000' is listed 2 times"),
    _ds(
        "ds-numtraining-mismatch",
        "numTraining 7 for 5 cases",
        lambda d: d.update(numTraining=7),
        "numTraining is 7 but 5",
    ),
    _ds(
        "ds-bad-file-ending",
        "file_ending without a dot",
        lambda d: d.update(file_ending="nii.gz"),
        "file_ending must start with '.'",
    ),
    _ds(
        "ds-channel-gap",
        "modality keys 0 and 2",
        lambda d: d.update(modality={"0": "T1", "2": "T2"}),
        "modality keys must be 0..1",
    ),
    _ds(
        "ds-entry-wrong-ending",
        "training image not ending in .nii.gz",
        lambda d: d["training"][0].update(image="./imagesTr/case_000.nii"),
        "does not end with the dataset's file ending",
    ),
    BadInput(
        "ds-not-json",
        "dataset.json",
        "truncated JSON",
        lambda ws: (ws.raw / "dataset.json").write_text('{"labels": '),
        VERIFY,
        "dataset.json: not valid JSON",
    ),
    BadInput(
        "ds-channels-mismatch",
        "dataset.json",
        "two channels declared, files have one",
        second_channel_dataset,
        VERIFY,
        "imagesTr/case_000_0001.nii.gz: missing channel 1",
    ),
]

IMAGES = [
    BadInput(
        "img-truncated-gz",
        "image",
        "download stopped halfway",
        truncate(image),
        VERIFY,
        "imagesTr/case_001_0000.nii.gz: cannot read: the file is truncated",
    ),
    BadInput(
        "img-truncated-payload",
        "image",
        "complete gzip, voxel block cut short",
        short_payload,
        FINGERPRINT,
        "case_001_0000.nii.gz: the file is truncated",
    ),
    BadInput(
        "img-crc",
        "image",
        "one flipped byte (gzip CRC)",
        flip_byte,
        VERIFY,
        "imagesTr/case_001_0000.nii.gz: cannot read: damaged gzip data",
    ),
    BadInput(
        "img-not-an-image",
        "image",
        "random bytes named .nii.gz",
        lambda ws: image(ws).write_bytes(b"\x1f\x8b not really"),
        VERIFY,
        "imagesTr/case_001_0000.nii.gz",
    ),
    BadInput(
        "img-2d-in-3d",
        "image",
        "a 2D slice in a 3D dataset",
        image_and_label(lambda a: a[5]),
        VERIFY,
        "2D image in a dataset of 3D images",
    ),
    BadInput(
        "img-4d",
        "image",
        "a 4D image where 3D is expected",
        change_image(lambda a: np.stack([a, a])),
        VERIFY,
        "expected a 2D or 3D single-channel image, got 4D",
    ),
    BadInput(
        "img-nan",
        "image",
        "NaN voxels",
        change_image(with_value(np.nan)),
        VERIFY,
        "imagesTr/case_001_0000.nii.gz: 1 NaN/inf voxel(s)",
    ),
    BadInput(
        "img-inf-preprocess",
        "image",
        "inf voxels, met by plan-and-preprocess",
        change_image(with_value(np.inf)),
        FINGERPRINT,
        "case_001_0000.nii.gz: 1 NaN/inf voxel(s)",
    ),
    BadInput(
        "img-all-zero",
        "image",
        "an all-zero image",
        change_image(lambda a: np.zeros_like(a)),
        VERIFY,
        "imagesTr/case_001_0000.nii.gz: all voxels are 0",
        "warning",
    ),
    BadInput(
        "img-huge-spacing",
        "image",
        "spacing 1e6 mm",
        image_and_label(lambda a: a, spacing=(1e6, 1e6, 1e6)),
        VERIFY,
        "imagesTr/case_001_0000.nii.gz: spacing (1e+06, 1e+06, 1e+06) mm is implausible",
    ),
    BadInput(
        "img-zero-spacing",
        "image",
        "spacing 0 in the header",
        image_and_label(lambda a: a, spacing=(1.5, 1.0, 1e-9)),
        VERIFY,
        "imagesTr/case_001_0000.nii.gz: spacing (1.5, 1, 1e-09) mm is implausible",
    ),
    BadInput(
        "img-non-orthogonal",
        "image",
        "direction matrix not orthonormal",
        shear_sform,
        VERIFY,
        "imagesTr/case_001_0000.nii.gz: sform matrix is not orthogonal",
    ),
    BadInput(
        "img-label-geometry",
        "label",
        "label from another dataset (other shape, spacing)",
        label_from_other_dataset,
        VERIFY,
        "labelsTr/case_001.nii.gz: shape",
    ),
    BadInput(
        "img-origin-mismatch",
        "label",
        "label shifted by 5 mm",
        change_image(lambda a: a, label, origin=(0.0, 0.0, 5.0)),
        VERIFY,
        "labelsTr/case_001.nii.gz: origin",
    ),
    BadInput(
        "img-missing-0001",
        "image",
        "two-channel case without _0001",
        missing_second_channel,
        VERIFY,
        "imagesTr/case_002_0001.nii.gz: missing channel 1",
    ),
    BadInput(
        "img-missing-label",
        "label",
        "an image whose label is missing",
        drop_label,
        VERIFY,
        "labelsTr/case_002.nii.gz: missing label",
    ),
    BadInput(
        "img-stray-case",
        "image",
        "an image dropped in without label or listing",
        stray_image_without_label,
        VERIFY,
        "imagesTr/case_777_0000.nii.gz: not part of any case",
        "warning",
    ),
    BadInput(
        "img-wrong-channel-suffix",
        "image",
        "a _0001 file in a one-channel dataset",
        wrong_channel_suffix,
        VERIFY,
        "imagesTr/case_000_0001.nii.gz: channel 1 but dataset.json declares 1 channel",
        "warning",
    ),
    BadInput(
        "img-no-channel-suffix",
        "image",
        "image named CASE.nii.gz, no _0000",
        no_channel_suffix,
        VERIFY,
        "imagesTr/case_000.nii.gz: no _0000 channel suffix",
        "warning",
    ),
    BadInput(
        "img-predict-nan",
        "image",
        "NaN in an image given to predict",
        change_image(with_value(np.nan), lambda ws: ws.raw / "imagesTs" / "case_005_0000.nii.gz"),
        PREDICT,
        "case_005_0000.nii.gz: 1 NaN/inf voxel(s)",
    ),
]

LABELS = [
    BadInput(
        "lbl-undeclared",
        "label",
        "label value 5 not in dataset.json",
        change_image(lambda a: np.where(a == 2, 5, a).astype(np.uint8), label),
        VERIFY,
        "labelsTr/case_001.nii.gz: label value(s) 5 not declared",
    ),
    BadInput(
        "lbl-float",
        "label",
        "float label with 0.5",
        change_image(with_value(0.5), label),
        VERIFY,
        "labelsTr/case_001.nii.gz: non-integer label value 0.5",
    ),
    BadInput(
        "lbl-negative",
        "label",
        "label value -1",
        change_image(lambda a: np.where(a == 2, -1, a.astype(np.int16)).astype(np.int16), label),
        VERIFY,
        "labelsTr/case_001.nii.gz: label value(s) -1 not declared",
    ),
    BadInput(
        "lbl-empty",
        "label",
        "no foreground at all",
        change_image(lambda a: np.zeros_like(a), label),
        VERIFY,
        "labelsTr/case_001.nii.gz: no foreground",
        "warning",
    ),
]

ARTIFACTS = [
    BadInput(
        "plans-negative-patch",
        "plans",
        "patch_size [-16, 16, 14]",
        conf3d(lambda c: c.update(patch_size=[-16, 16, 14])),
        TRAIN,
        "segforgePlans.json: configurations.3d_fullres.patch_size",
    ),
    BadInput(
        "plans-unknown-network",
        "plans",
        "network name nobody registered",
        conf3d(lambda c: c["network"].update(name="no_such_net")),
        TRAIN,
        "no_such_net",
    ),
    BadInput(
        "plans-spacing-type",
        "plans",
        "spacing as a string",
        conf3d(lambda c: c.update(spacing="2,1,1.5")),
        PREPROCESS,
        "segforgePlans.json: configurations.3d_fullres.spacing",
    ),
    BadInput(
        "plans-truncated",
        "plans",
        "half-written plans",
        truncate(lambda ws: ws.pre / "segforgePlans.json"),
        PREPROCESS,
        "segforgePlans.json: not valid JSON",
    ),
    BadInput(
        "fingerprint-wrong-type",
        "fingerprint",
        "spacing as text in one case",
        lambda ws: edit_json(ws.pre / "fingerprint.json", lambda f: f["cases"][0].update(spacing="abc")),
        TRAIN + ("--network", "residual_unet"),
        "fingerprint.json: cases.0.spacing",
    ),
    BadInput(
        "splits-fold-count",
        "splits",
        "2 folds, --fold 4 asked",
        splits([{"train": ["case_000", "case_001"], "val": ["case_002", "case_003"]}] * 2),
        TRAIN[:4] + ("4",) + TRAIN[5:],
        "splits_final.json",
    ),
    BadInput(
        "splits-unknown-ids",
        "splits",
        "ids not in the dataset",
        splits([{"train": ["case_000", "nobody"], "val": ["case_002"]}] * 5),
        TRAIN,
        "splits_final.json: fold 0 train names 1 case(s)",
    ),
    BadInput(
        "splits-wrong-shape", "splits", "a dict instead of a list", splits({"train": []}), TRAIN, "splits_final.json"
    ),
    BadInput(
        "ckpt-truncated",
        "checkpoint",
        "checkpoint cut off",
        truncate(lambda ws: ws.fold / "checkpoint_final.pt"),
        PREDICT,
        "checkpoint_final.pt",
    ),
    BadInput(
        "ckpt-other-network",
        "checkpoint",
        "weights of another network",
        checkpoint_from_other_network,
        PREDICT,
        "checkpoint_final.pt",
    ),
    BadInput(
        "ckpt-missing-plugin",
        "checkpoint",
        "network from a plugin not installed",
        checkpoint_from_missing_plugin,
        PREDICT,
        "swin_unet",
    ),
]

CLI = [
    BadInput("cli-unknown-task", "cli", "task 42 does not exist", _no_change, ("verify", "--task", "42"), "no task 42"),
    BadInput("cli-fold-7", "cli", "fold 7 of a 5-fold split", _no_change, TRAIN[:4] + ("7",) + TRAIN[5:], "fold 7"),
    BadInput("cli-fold-text", "cli", "fold 'x'", _no_change, TRAIN[:4] + ("x",) + TRAIN[5:], "fold"),
    BadInput(
        "cli-missing-input",
        "cli",
        "predict input folder missing",
        _no_change,
        ("predict", "-i", "{root}/nowhere", "-o", "{out}", "-m", "{fold}"),
        "nowhere",
    ),
    BadInput(
        "cli-missing-model",
        "cli",
        "model folder missing",
        _no_change,
        ("predict", "-i", "{ts}", "-o", "{out}", "-m", "{root}/nomodel"),
        "nomodel",
    ),
    BadInput(
        "cli-missing-raw",
        "cli",
        "raw folder deleted",
        lambda ws: shutil.rmtree(ws.root / "raw"),
        VERIFY,
        "does not exist",
    ),
    BadInput("cli-unwritable-output", "cli", "output path is a file", unwritable_output, PREDICT, "/out: File exists"),
    BadInput(
        "cli-np-zero", "cli", "-np 0", _no_change, ("verify", "--task", TASK, "-np", "0"), "-np must be at least 1"
    ),
]


def test_image(ws: Workspace) -> Path:
    return ws.raw / "imagesTs" / "case_005_0000.nii.gz"


RESOURCES = [
    BadInput(
        "mem-preprocess-spacing",
        "resources",
        "spacing 500 mm: resampled image cannot fit",
        image_and_label(lambda a: a, spacing=(500.0, 500.0, 500.0)),
        PREPROCESS,
        "preprocessing case_001_0000.nii.gz",
    ),
    BadInput(
        "mem-preprocess-limit",
        "resources",
        "SEGFORGE_MAX_MEMORY_GB below what a case needs",
        lambda ws: shutil.rmtree(ws.pre / "segforgePlans_3d_fullres"),
        PREPROCESS,
        "SEGFORGE_MAX_MEMORY_GB=0.000001",
        env=(("SEGFORGE_MAX_MEMORY_GB", "0.000001"),),
    ),
    BadInput(
        "mem-predict-spacing",
        "resources",
        "test image with spacing 500 mm",
        change_image(lambda a: a, test_image, spacing=(500.0, 500.0, 500.0)),
        PREDICT,
        "predicting case_005_0000.nii.gz",
    ),
    BadInput(
        "mem-bad-env",
        "resources",
        "SEGFORGE_MAX_MEMORY_GB=lots",
        _no_change,
        PREDICT,
        "SEGFORGE_MAX_MEMORY_GB='lots' is not a positive number",
        env=(("SEGFORGE_MAX_MEMORY_GB", "lots"),),
    ),
]

CORPUS: list[BadInput] = DATASET_JSON + IMAGES + LABELS + ARTIFACTS + CLI + RESOURCES + NATURAL + IMPORTS + DICOM
