"""nnU-Net v2's ``plans.json`` + ``dataset.json`` as segforge :class:`~segforge.config.plans.Plans`.

segforge's plans follow nnU-Net v2's on purpose (same axis conventions, spacing, patch size,
normalization per channel, resampling orders, transpose, foreground intensity statistics), so the
conversion is mostly renaming: nnU-Net's class names become registry names (``ZScoreNormalization``
-> ``zscore``, ``SimpleITKIO`` -> ``simpleitk``), its resampling kwargs become a
:class:`~segforge.config.plans.ResamplingSpec` and its ``architecture`` a network spec
(:mod:`.architecture`). Labels, regions and the ignore label come from dataset.json exactly as
nnU-Net's LabelManager reads them. Only the configuration the checkpoint was trained with is
converted; a configuration's ``inherits_from`` chain is resolved first, as nnU-Net's PlansManager does.

What segforge's predictor cannot reproduce is refused here with one line naming the plans field:
another preprocessor class, another resampling function, a cascade stage (it needs the previous
stage's predictions), image readers segforge has no equivalent for.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from segforge.config.plans import ConfigurationPlan, IntensityStats, NetworkSpec, Plans, ResamplingSpec
from segforge.errors import ConfigError

#: nnU-Net image reader/writer class -> segforge image IO registry name
IMAGE_IO = {"SimpleITKIO": "simpleitk", "NaturalImage2DIO": "natural2d"}
_RESAMPLING_FN = "resample_data_or_seg_to_shape"
_STATS_KEYS = ("mean", "median", "std", "min", "max", "percentile_00_5", "percentile_99_5")
#: nnU-Net's separate-z rule: an axis whose spacing is this many times the others' is resampled on its own
_NNUNET_ANISOTROPY_THRESHOLD = 3.0


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from the nnU-Net folder; unreadable -> ConfigError naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{path} not found", hint="pass the folder nnU-Net v2 trained into (plans.json, dataset.json, fold_N/)"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{path}: not readable JSON ({exc})", hint="copy the file again from nnU-Net's results"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object", hint="copy the file again from nnU-Net's results")
    return data


def resolved_configuration(plans: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    """The configuration with its ``inherits_from`` parents merged in (child keys win)."""
    configurations = plans.get("configurations") or {}
    chain: list[str] = []
    current: str | None = name
    while current is not None:
        if current not in configurations:
            raise ConfigError(
                f"{where}: configurations.{current} not found (has: {', '.join(configurations)})",
                hint="the checkpoint was trained with another plans.json; copy the model folder again",
            )
        if current in chain:
            raise ConfigError(f"{where}: configurations.{name} inherits from itself", hint="fix inherits_from")
        chain.append(current)
        current = configurations[current].get("inherits_from")
    merged: dict[str, Any] = {}
    for key in reversed(chain):
        merged.update({k: v for k, v in configurations[key].items() if k != "inherits_from"})
    return merged


def legacy_architecture(conf: dict[str, Any]) -> dict[str, Any]:
    """nnU-Net < 2.4 plans (``UNet_class_name``, ``conv_kernel_sizes``...) in the newer ``architecture`` form.

    The same defaults nnU-Net's ConfigurationManager fills in for such plans: instance norm
    (eps 1e-5, affine), leaky ReLU in place, conv bias, features doubling up to ``unet_max_num_features``.
    """
    kernels = conf["conv_kernel_sizes"]
    dims = len(kernels[0])
    n = len(kernels)
    base, cap = int(conf["UNet_base_num_features"]), int(conf["unet_max_num_features"])
    name = str(conf["UNet_class_name"])
    kwargs = {
        "n_stages": n,
        "features_per_stage": [min(base * 2**i, cap) for i in range(n)],
        "conv_op": f"torch.nn.modules.conv.Conv{dims}d",
        "kernel_sizes": kernels,
        "strides": conf["pool_op_kernel_sizes"],
        "n_conv_per_stage_decoder": conf["n_conv_per_stage_decoder"],
        "conv_bias": True,
        "norm_op": f"torch.nn.modules.instancenorm.InstanceNorm{dims}d",
        "norm_op_kwargs": {"eps": 1e-5, "affine": True},
        "dropout_op": None,
        "dropout_op_kwargs": None,
        "nonlin": "torch.nn.LeakyReLU",
        "nonlin_kwargs": {"inplace": True},
    }
    blocks_key = "n_blocks_per_stage" if name == "ResidualEncoderUNet" else "n_conv_per_stage"
    kwargs[blocks_key] = conf["n_conv_per_stage_encoder"]
    return {"network_class_name": f"dynamic_network_architectures.architectures.unet.{name}", "arch_kwargs": kwargs}


def _resampling(conf: dict[str, Any], where: str) -> ResamplingSpec:
    """nnU-Net's data and probability resampling kwargs: data orders for preprocessing, probability orders
    for export (segforge's export resamples logits with ``order_seg``/``order_z_seg``)."""
    for key in ("resampling_fn_data", "resampling_fn_probabilities"):
        if conf.get(key, _RESAMPLING_FN) != _RESAMPLING_FN:
            raise ConfigError(
                f"{where}: {key} '{conf[key]}' is not nnU-Net's default {_RESAMPLING_FN}",
                hint="segforge reproduces only nnU-Net's default resampling; predict with nnU-Net",
            )
    data = conf.get("resampling_fn_data_kwargs") or {}
    probs = conf.get("resampling_fn_probabilities_kwargs") or {}
    if data.get("force_separate_z") != probs.get("force_separate_z"):
        raise ConfigError(
            f"{where}: force_separate_z differs between data and probability resampling",
            hint="segforge uses one force_separate_z for both; predict with nnU-Net",
        )
    threshold = data.get("separate_z_anisotropy_threshold", _NNUNET_ANISOTROPY_THRESHOLD)
    return ResamplingSpec(
        order_data=int(data.get("order", 3)),
        order_z_data=int(data.get("order_z", 0)),
        order_seg=int(probs.get("order", 1)),
        order_z_seg=int(probs.get("order_z", 0)),
        force_separate_z=data.get("force_separate_z"),
        anisotropy_threshold=float(threshold),
    )


def _normalization(conf: dict[str, Any], where: str) -> list[str]:
    from segforge.preprocessing.normalization import NNUNET_SCHEME_NAMES

    out = []
    for scheme in conf.get("normalization_schemes") or []:
        if scheme not in NNUNET_SCHEME_NAMES:
            raise ConfigError(
                f"{where}: normalization scheme '{scheme}' has no segforge equivalent "
                f"(supported: {', '.join(NNUNET_SCHEME_NAMES)})",
                hint="predict with nnU-Net",
            )
        out.append(NNUNET_SCHEME_NAMES[scheme])
    return out


def _image_io(plans: dict[str, Any], dataset: dict[str, Any], where: str) -> str:
    reader = dataset.get("overwrite_image_reader_writer") or plans.get("image_reader_writer", "SimpleITKIO")
    if reader not in IMAGE_IO:
        raise ConfigError(
            f"{where}: image reader '{reader}' has no segforge equivalent (supported: {', '.join(IMAGE_IO)})",
            hint="predict with nnU-Net",
        )
    return IMAGE_IO[reader]


def convert_plans(
    plans: dict[str, Any],
    dataset: dict[str, Any],
    configuration: str,
    network: tuple[str, str, dict[str, Any]],
    where: str,
) -> Plans:
    """segforge plans holding ``configuration`` of nnU-Net's ``plans`` with ``network`` = (name, version, params)."""
    from segforge._version import __version__
    from segforge.config.dataset import DatasetJson
    from segforge.config.label_scheme import LabelScheme

    conf = resolved_configuration(plans, configuration, where)
    if conf.get("previous_stage"):
        raise ConfigError(
            f"{where}: {configuration} is a cascade stage (it needs {conf['previous_stage']}'s predictions)",
            hint="import and predict the 3d_lowres or 3d_fullres model instead",
        )
    if conf.get("preprocessor_name", "DefaultPreprocessor") != "DefaultPreprocessor":
        raise ConfigError(
            f"{where}: preprocessor '{conf['preprocessor_name']}' is not nnU-Net's DefaultPreprocessor",
            hint="segforge reproduces only nnU-Net's default preprocessing; predict with nnU-Net",
        )
    try:
        ds = DatasetJson.model_validate(dataset)
        scheme = LabelScheme.from_dataset_json(ds)
        stats = {
            str(k): IntensityStats(**{key: float(v[key]) for key in _STATS_KEYS})
            for k, v in (plans.get("foreground_intensity_properties_per_channel") or {}).items()
        }
        name, version, params = network
        cp = ConfigurationPlan(
            name=configuration,
            data_identifier=str(conf.get("data_identifier", configuration)),
            spacing=conf["spacing"],
            patch_size=conf["patch_size"],
            batch_size=int(conf.get("batch_size", 2)),
            median_image_size_in_voxels=conf["median_image_size_in_voxels"],
            normalization=_normalization(conf, where),
            use_mask_for_norm=conf["use_mask_for_norm"],
            resampling=_resampling(conf, where),
            network=NetworkSpec(name=name, version=version, params=params),
            batch_dice=bool(conf.get("batch_dice", True)),
        )
        return Plans(
            dataset_name=str(plans["dataset_name"]),
            plans_name=str(plans["plans_name"]),
            planner=f"nnunet:{plans.get('experiment_planner_used', 'unknown')}",
            planner_version="nnunetv2",
            segforge_version=__version__,
            fingerprint_digest=_digest(plans),
            image_io=_image_io(plans, dataset, where),
            transpose_forward=plans["transpose_forward"],
            transpose_backward=plans["transpose_backward"],
            original_median_spacing_after_transp=plans["original_median_spacing_after_transp"],
            original_median_shape_after_transp=[float(v) for v in plans["original_median_shape_after_transp"]],
            labels=ds.label_values(),
            foreground_intensity_properties_per_channel=stats,
            configurations={configuration: cp},
            **scheme.plans_fields(),
        )
    except KeyError as exc:
        raise ConfigError(
            f"{where}: missing field {exc}", hint="copy plans.json again from nnU-Net's results"
        ) from None
    except ValueError as exc:  # pydantic ValidationError included
        reason = " ".join(str(exc).split())[:240]
        raise ConfigError(
            f"{where}: cannot be read as segforge plans ({reason})",
            hint="copy plans.json and dataset.json again from nnU-Net's results",
        ) from None


def _digest(plans: dict[str, Any]) -> str:
    """Stands in for the fingerprint digest: the imported plans' canonical JSON (nnU-Net keeps no digest)."""
    return "nnunet-" + hashlib.sha256(json.dumps(plans, sort_keys=True).encode("utf-8")).hexdigest()[:16]
