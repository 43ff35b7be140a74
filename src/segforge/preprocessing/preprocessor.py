"""Preprocessing one case: transpose, crop, normalize, resample, sample class locations.

The order is nnU-Net v2's: transpose by ``plans.transpose_forward``, crop to the nonzero
region, normalize each channel (*before* resampling, with the nonzero mask), resample image
and label to the configuration's spacing, then sample foreground locations. Export undoes
it in reverse (resample back, paste into the uncropped shape, transpose back) with what
:class:`~segforge.data.case_store.CaseProperties` records.

A :class:`CasePreprocessor` reads a case once and produces every requested configuration
from it (transposing and cropping once, normalizing once per distinct scheme), which is
where most of the time goes for small images. :func:`preprocess_case` is the one-shot form
for inference on a raw image without a label; it writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from segforge.config.plans import ConfigurationPlan, Plans
from segforge.data.case_store import CaseProperties, SourceFile
from segforge.errors import ConfigError
from segforge.io.image_io import ImageProperties, file_ending_of
from segforge.preprocessing.class_locations import foreground_labels, sample_class_locations
from segforge.preprocessing.cropping import crop_to_nonzero
from segforge.preprocessing.normalization import NNUNET_SCHEME_NAMES
from segforge.preprocessing.resampling import compute_new_shape, resample_data, resample_seg

#: bump when preprocessing produces different arrays from the same plans (cases are then redone)
PREPROCESSING_VERSION = "1"


def preprocessing_digest(plans: Plans, conf: ConfigurationPlan) -> str:
    """Digest of everything in the plans that changes a configuration's preprocessed arrays.

    Network, patch and batch size are left out on purpose: re-planning for another network
    keeps the preprocessed data valid.
    """
    relevant = {
        "version": PREPROCESSING_VERSION,
        "image_io": plans.image_io,
        "transpose_forward": plans.transpose_forward,
        "labels": plans.labels,
        "intensity": {k: v.model_dump() for k, v in sorted(plans.foreground_intensity_properties_per_channel.items())},
        "data_identifier": conf.data_identifier,
        "spacing": conf.spacing,
        "normalization": conf.normalization,
        "use_mask_for_norm": conf.use_mask_for_norm,
        "resampling": conf.resampling.model_dump(),
    }
    text = json.dumps(relevant, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def source_files(paths: Sequence[os.PathLike[str] | str]) -> list[SourceFile]:
    """Name, size and modification time of each raw input (a changed file makes its case stale)."""
    out = []
    for p in map(Path, paths):
        st = p.stat()
        out.append(SourceFile(name=p.name, size=st.st_size, mtime_ns=st.st_mtime_ns))
    return out


@dataclass
class PreprocessedCase:
    """One case preprocessed for one configuration (what :func:`~segforge.data.case_store.write_case` stores)."""

    data: np.ndarray
    seg: np.ndarray | None
    props: CaseProperties
    class_locations: dict[int, np.ndarray] = field(default_factory=dict)


def resolve_normalizers(conf: ConfigurationPlan, registries: Any = None) -> list[Any]:
    """The normalization component for each channel of ``conf`` (nnU-Net class names are accepted)."""
    if registries is None:
        from segforge.plugins import get_registries

        registries = get_registries()
    reg = registries.normalization
    return [reg.get(NNUNET_SCHEME_NAMES.get(name, name) if name not in reg else name) for name in conf.normalization]


def _target_spacing(conf: ConfigurationPlan, original_spacing: list[float]) -> list[float]:
    """The configuration's spacing for all axes; 2D plans give in-plane spacing only (nnU-Net style)."""
    target = list(conf.spacing)
    if len(target) < len(original_spacing):
        target = list(original_spacing[: len(original_spacing) - len(target)]) + target
    return target


def _final_seg_dtype(seg: np.ndarray) -> np.ndarray:
    high = int(seg.max()) if seg.size else 0
    return seg.astype(np.int8 if high <= 127 else np.int16, copy=False)


class CasePreprocessor:
    """Preprocesses cases for several configurations of one plans object.

    Configurations that share a ``data_identifier`` (``3d_cascade_fullres`` reuses
    ``3d_fullres`` data) are produced once; sharing one with different preprocessing is a
    ConfigError. Components are resolved up front, so a worker process can hold one
    instance and run many cases.
    """

    def __init__(
        self,
        plans: Plans,
        configuration_names: Sequence[str],
        *,
        image_io: Any = None,
        registries: Any = None,
    ) -> None:
        self.plans = plans
        self.configurations: dict[str, ConfigurationPlan] = {}
        self.digests: dict[str, str] = {}
        for name in configuration_names:
            conf = plans.configuration(name)
            digest = preprocessing_digest(plans, conf)
            known = self.digests.get(conf.data_identifier)
            if known is not None and known != digest:
                raise ConfigError(
                    f"plans '{plans.plans_name}': configuration '{name}' shares data_identifier "
                    f"'{conf.data_identifier}' with another configuration but preprocesses differently",
                    hint="give it its own data_identifier in the plans, or make spacing/normalization/resampling equal",
                )
            if known is None:
                self.configurations[conf.data_identifier] = conf
                self.digests[conf.data_identifier] = digest
        if registries is None:
            from segforge.plugins import get_registries

            registries = get_registries()
        self.image_io = image_io if image_io is not None else registries.image_io.get(plans.image_io)
        self.normalizers = {d: resolve_normalizers(c, registries) for d, c in self.configurations.items()}
        # region plans: sample every label a region holds (plans.labels then lists only background)
        self.fg_labels = foreground_labels(plans.labels, plans.regions)

    @property
    def data_identifiers(self) -> list[str]:
        return list(self.configurations)

    # -- files ------------------------------------------------------------------------------
    def run_files(
        self,
        image_files: Sequence[os.PathLike[str] | str],
        label_file: os.PathLike[str] | str | None,
        case_id: str,
        data_identifiers: Sequence[str] | None = None,
    ) -> dict[str, PreprocessedCase]:
        """Read one case (channels + optional label) once and preprocess it per data identifier."""
        data, image_props = self.image_io.read_images([Path(p) for p in image_files])
        seg = self.image_io.read_seg(Path(label_file))[0] if label_file is not None else None
        if seg is not None and seg.shape[1:] != data.shape[1:]:
            raise ConfigError(
                f"{label_file}: label shape {list(seg.shape[1:])} differs from image shape {list(data.shape[1:])}",
                hint="run `segforge verify` on the dataset and fix the label file",
            )
        sources = source_files([*image_files, *([label_file] if label_file is not None else [])])
        return self.run_arrays(data, seg, image_props, case_id, data_identifiers, sources)

    # -- arrays -----------------------------------------------------------------------------
    def run_arrays(
        self,
        data: np.ndarray,
        seg: np.ndarray | None,
        image_props: ImageProperties,
        case_id: str,
        data_identifiers: Sequence[str] | None = None,
        sources: list[SourceFile] | None = None,
    ) -> dict[str, PreprocessedCase]:
        """Preprocess arrays as read: ``data`` [C, *spatial], ``seg`` [1, *spatial] or None (both left unmodified)."""
        data, seg, base = self._transpose_and_crop(data, seg, image_props, case_id)
        base["source_files"] = sources or []
        idents = list(data_identifiers or self.data_identifiers)
        keys = {ident: self._norm_key(self.configurations[ident]) for ident in idents}
        normalized: dict[tuple, np.ndarray] = {}
        out = {}
        for ident in idents:
            conf, key = self.configurations[ident], keys[ident]
            if key not in normalized:  # in place unless another scheme still needs the raw values
                copy = len(set(keys.values())) > 1
                normalized[key] = self._normalize(data, seg[0], conf, self.normalizers[ident], copy=copy)
            out[ident] = self._resample(normalized[key], seg if base["has_seg"] else None, conf, base)
        return out

    def _transpose_and_crop(
        self, data: np.ndarray, seg: np.ndarray | None, image_props: ImageProperties, case_id: str
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Transposed, cropped float32 copy of ``data``, the cropped seg (or 0/-1 mask) and the shared props."""
        expected = len(next(iter(self.configurations.values())).normalization)
        if data.shape[0] != expected:
            raise ConfigError(
                f"case '{case_id}' has {data.shape[0]} channel(s) but the plans normalize {expected}",
                hint="check that the dataset's channels match the plans (re-run `segforge plan` after changing them)",
            )
        tf = self.plans.transpose_forward
        axes = [0, *[a + 1 for a in tf]]
        transposed = data.transpose(axes)
        cropped, seg_c, bbox = crop_to_nonzero(transposed, None if seg is None else seg.transpose(axes))
        if cropped.dtype != np.float32 or np.may_share_memory(cropped, data):  # normalization works in place
            cropped = cropped.astype(np.float32, copy=True)
        base = dict(case_id=case_id, preprocessing_version=PREPROCESSING_VERSION, image=image_props,
                    transpose_forward=list(tf), original_spacing=[float(image_props.spacing[a]) for a in tf],
                    shape_before_cropping=list(transposed.shape[1:]), bbox=[tuple(b) for b in bbox],
                    shape_after_cropping=list(cropped.shape[1:]), num_channels=int(cropped.shape[0]),
                    has_seg=seg is not None)  # fmt: skip
        return cropped, seg_c, base

    def _resample(
        self, data: np.ndarray, seg: np.ndarray | None, conf: ConfigurationPlan, base: dict[str, Any]
    ) -> PreprocessedCase:
        """Resample to the configuration's spacing and sample class locations from the resampled label."""
        original = base["original_spacing"]
        target = _target_spacing(conf, original)
        new_shape = compute_new_shape(data.shape[1:], original, target)
        data_r = resample_data(data, new_shape, original, target, conf.resampling)
        seg_r, locations = None, {}
        if seg is not None:
            seg_r = _final_seg_dtype(resample_seg(seg, new_shape, original, target, conf.resampling))
            locations = sample_class_locations(seg_r[0], self.fg_labels)
        props = CaseProperties(**base, digest=self.digests[conf.data_identifier], data_identifier=conf.data_identifier,
                               spacing=target, shape_after_resampling=list(data_r.shape[1:]),
                               class_location_counts={str(k): len(v) for k, v in locations.items()})  # fmt: skip
        return PreprocessedCase(np.ascontiguousarray(data_r), seg_r, props, locations)

    @staticmethod
    def _norm_key(conf: ConfigurationPlan) -> tuple:
        return tuple(conf.normalization), tuple(conf.use_mask_for_norm)

    def _normalize(
        self, data: np.ndarray, seg0: np.ndarray, conf: ConfigurationPlan, normalizers: list[Any], copy: bool
    ) -> np.ndarray:
        """Each channel by its scheme; the mask (nonzero region, ``seg >= 0``) only where the plans ask."""
        out = data.copy() if copy else data
        mask = seg0 >= 0 if any(conf.use_mask_for_norm) else None
        stats = self.plans.foreground_intensity_properties_per_channel
        for c, (norm, use_mask) in enumerate(zip(normalizers, conf.use_mask_for_norm, strict=True)):
            out[c] = norm.normalize(out[c], mask if use_mask else None, stats.get(str(c)))
        return out


def preprocess_case(
    image_files: Sequence[os.PathLike[str] | str],
    plans: Plans,
    configuration: str,
    *,
    label_file: os.PathLike[str] | str | None = None,
    case_id: str | None = None,
    image_io: Any = None,
    registries: Any = None,
) -> PreprocessedCase:
    """Preprocess one raw case for ``configuration`` in memory (inference: no label needed, nothing written)."""
    pre = CasePreprocessor(plans, [configuration], image_io=image_io, registries=registries)
    ident = pre.data_identifiers[0]
    name = Path(image_files[0]).name
    ending = file_ending_of(name, getattr(pre.image_io, "file_endings", ()))
    cid = case_id or name[: len(name) - len(ending)].removesuffix("_0000")
    return pre.run_files(image_files, label_file, cid, [ident])[ident]


def __getattr__(name: str) -> Any:
    """``preprocess_dataset`` lives in :mod:`.dataset_runner`; importable from here too (lazily)."""
    if name == "preprocess_dataset":
        from segforge.preprocessing.dataset_runner import preprocess_dataset

        return preprocess_dataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
