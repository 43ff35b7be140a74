"""Turning the network's logits back into a segmentation file in the input image's geometry.

Preprocessing transposed, cropped and resampled the image (see
:class:`~segforge.data.case_store.CaseProperties`); export undoes it in reverse, as nnU-Net v2's
``convert_predicted_logits_to_segmentation_with_correct_shape`` does: resample the *logits* to
the cropped original shape (linear in plane, nearest along a separately-resampled z: the
plans' segmentation orders, which equal nnU-Net's defaults for probabilities), take the
argmax, paste it into the uncropped volume (background outside the crop), transpose back and
write it with the input's spacing, origin and direction through the image-IO component.

Memory: nnU-Net resamples all classes at once in float64 (``C x volume x 8`` bytes: 8.8 GB for
14 classes on 300x512x512). Here classes are resampled one at a time into a running argmax
(one float32 volume of the best logit so far and the uint8 label map), written straight into
the uncropped output, so the cost no longer grows with the number of classes. Probabilities
(opt-in, for ensembling) need every class at once and cost ``C x volume`` more.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from segforge.atomic import atomic_path
from segforge.config.plans import ConfigurationPlan, Plans
from segforge.data.case_store import CaseProperties
from segforge.errors import ConfigError
from segforge.inference.case_geometry import check_logits_shape, label_canvas, paste_channels, resampled_channels
from segforge.io.image_io import ImageProperties

if TYPE_CHECKING:  # pragma: no cover
    import torch

PROBABILITIES_FORMAT_VERSION = 1


class ProbabilitiesInfo(BaseModel):
    """The JSON beside ``CASE.npz``: what the probabilities array means (no pickle, unlike nnU-Net's .pkl).

    ``CASE.npz`` holds one float16 array ``probabilities`` of shape ``[len(labels), *image.shape]``
    in the raw image's array order (z, y, x), softmax over the labels; voxels outside the
    region the network saw are background with probability 1.
    """

    model_config = ConfigDict(extra="forbid")

    format_version: int = PROBABILITIES_FORMAT_VERSION
    case_id: str
    labels: list[int]
    shape: list[int]
    image: ImageProperties
    plans_name: str
    configuration: str


def label_values(plans: Plans, num_channels: int) -> np.ndarray:
    """Label value of each output channel (channel ``c`` predicts the ``c``-th smallest label; never ``ignore``;
    for region plans the ``regions_class_order``)."""
    from segforge.config.label_scheme import LabelScheme

    values = LabelScheme.from_plans(plans).output_labels()
    if len(values) != num_channels:
        raise ConfigError(
            f"plans '{plans.plans_name}' declare {len(values)} labels but the network predicts {num_channels} channels",
            hint="the checkpoint does not belong to these plans; predict with the plans stored in the checkpoint",
        )
    return np.asarray(values)


def logits_to_segmentation(
    logits: np.ndarray | torch.Tensor,
    props: CaseProperties,
    plans: Plans,
    conf: ConfigurationPlan,
    *,
    keep_logits: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The label map in the raw image's array order and shape (uint8/uint16), and optionally the
    resampled logits ``[C, *shape_after_cropping]`` (transposed order) for probabilities.

    Classes are resampled one by one into a running argmax; ties go to the lower channel, as
    ``argmax`` does.
    """
    if plans.regions is not None:  # sigmoid outputs: threshold per region (segforge.inference.regions)
        from segforge.inference.regions import regions_to_segmentation

        return regions_to_segmentation(logits, props, plans, conf, keep_logits=keep_logits)
    values = label_values(plans, check_logits_shape(logits, props))
    full, seg = label_canvas(props, values)
    kept: list[np.ndarray | None] = [None] if keep_logits else None
    best = None
    for c, source, r in resampled_channels(logits, props, conf, kept):
        if best is None:  # never write into the caller's logits (unresampled channels are views)
            best = r.copy() if np.may_share_memory(r, source) else r
            seg[...] = values[0]
            continue
        better = r > best
        np.copyto(seg, values[c].astype(seg.dtype), where=better)
        np.maximum(best, r, out=best)
        del r, better
    return full.transpose(plans.transpose_backward), kept[0] if kept else None


def softmax_probabilities(resampled_logits: np.ndarray, props: CaseProperties, plans: Plans) -> np.ndarray:
    """Softmax of ``[C, *shape_after_cropping]`` logits pasted into the raw image's shape (float16).

    Outside the crop, background has probability 1 (nnU-Net's ``revert_cropping_on_probabilities``).
    The logits array is overwritten (it becomes the probabilities) to spare a copy.
    """
    x = resampled_logits
    x -= x.max(axis=0, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=0, keepdims=True)
    return paste_channels(x, props, plans.transpose_backward, background=0)


def write_probabilities(
    path: str | os.PathLike[str], probabilities: np.ndarray, info: ProbabilitiesInfo
) -> tuple[Path, Path]:
    """``CASE.npz`` (compressed, no pickle) and its ``CASE.json`` sidecar, both atomic; the JSON last."""
    npz = Path(path)
    sidecar = npz.with_suffix(".json")
    with contextlib.suppress(FileNotFoundError):  # an old sidecar must not describe a new array
        sidecar.unlink()
    with atomic_path(npz) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, probabilities=np.ascontiguousarray(probabilities))
    with atomic_path(sidecar) as tmp:
        tmp.write_text(info.model_dump_json(indent=1) + "\n", encoding="utf-8")
    return npz, sidecar


def read_probabilities(path: str | os.PathLike[str]) -> tuple[np.ndarray, ProbabilitiesInfo]:
    """Read ``CASE.npz`` and its sidecar (``allow_pickle=False``); errors name the file."""
    from segforge.config.jsonio import load_model

    npz = Path(path)
    info = load_model(
        npz.with_suffix(".json"), ProbabilitiesInfo, hint="re-run `segforge predict --save-probabilities`"
    )
    try:
        with np.load(npz, allow_pickle=False) as data:
            probs = data["probabilities"]
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{npz}: not a readable probabilities file ({exc})",
                          hint="re-run `segforge predict --save-probabilities`") from None  # fmt: skip
    if list(probs.shape) != [len(info.labels), *info.shape]:
        raise ConfigError(f"{npz}: shape {list(probs.shape)} does not match its JSON",
                          hint="re-run `segforge predict --save-probabilities`")  # fmt: skip
    return probs, info


def export_prediction(
    logits: np.ndarray | torch.Tensor,
    props: CaseProperties,
    plans: Plans,
    conf: ConfigurationPlan,
    output_file: str | os.PathLike[str],
    *,
    image_io: Any = None,
    save_probabilities: bool = False,
    postprocess: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Path:
    """Write the segmentation for ``logits`` (``[C, *shape_after_resampling]``) to ``output_file``.

    With ``save_probabilities`` also ``<output stem>.npz`` + ``.json`` beside it. ``postprocess``
    (e.g. postprocessing.json's rules) rewrites the label map *before* its one write, so a file
    under the final name is always the finished result (a kill cannot leave it unprocessed).
    Returns the segmentation's path. Writes are atomic.
    """
    output_file = Path(output_file)
    if image_io is None:
        from segforge.plugins import get_registries

        image_io = get_registries().image_io.get(plans.image_io)
    seg, kept = logits_to_segmentation(logits, props, plans, conf, keep_logits=save_probabilities)
    if save_probabilities:
        n = int(logits.shape[0])
        if plans.regions is not None:
            from segforge.inference.regions import sigmoid_probabilities

            probs = sigmoid_probabilities(kept, props, plans)
        else:
            probs = softmax_probabilities(kept, props, plans)
        del kept
        info = ProbabilitiesInfo(
            case_id=props.case_id, labels=[int(v) for v in label_values(plans, n)], shape=list(probs.shape[1:]),
            image=props.image, plans_name=plans.plans_name, configuration=conf.name,
        )  # fmt: skip
        write_probabilities(probabilities_path(output_file, image_io), probs, info)
        del probs
    if postprocess is not None:
        seg = postprocess(seg)
    image_io.write_seg(seg, output_file, props.image)
    return output_file


def probabilities_path(segmentation_file: Path, image_io: Any) -> Path:
    """``preds/CASE.npz`` for ``preds/CASE.nii.gz`` (the longest known ending is stripped)."""
    name = segmentation_file.name
    endings = sorted(getattr(image_io, "file_endings", ()), key=len, reverse=True)
    stem = next((name[: -len(e)] for e in endings if name.endswith(e)), Path(name).stem)
    return segmentation_file.with_name(stem + ".npz")
