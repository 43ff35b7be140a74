"""nnU-Net v2's network description (plans' ``architecture``) as a segforge builtin network, and its weights.

nnU-Net names its network by import path (``dynamic_network_architectures.architectures.unet.PlainConvUNet``)
with keyword arguments whose layer types are import paths too (``torch.nn.modules.conv.Conv3d``).
The builtin U-Nets never import by path from an artifact: the two U-Nets nnU-Net ships are the builtin
``generic_unet`` (PlainConvUNet) and ``residual_unet`` (ResidualEncoderUNet), built from the same
topology, so the kwargs are translated field by field and the layer types looked up in small
tables. Anything those networks cannot express (other classes, bottleneck blocks, ``nonlin_first``,
norms and non-linearities outside the tables) is refused with one line naming the plans field;
where nnU-Net's own network package is installed, the import falls back to its class instead
(:mod:`.dna_network`, which resolves import paths inside an allow-list only).

Weights: dynamic_network_architectures registers every conv unit twice (``conv`` and the
``all_modules`` Sequential holding the same tensors) and the encoder again under
``decoder.encoder``; its stages nest one level deeper (``stages.1.0.convs.0`` for a plain stage,
``stages.1.blocks.0`` for a residual one, ``stem.convs.0``). :func:`convert_state_dict` drops the
aliases and rewrites the paths; the result must cover segforge's network exactly, tensor for
tensor, or the import stops.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from segforge.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: nnU-Net network class (last path component) -> segforge builtin network
NETWORKS = {"PlainConvUNet": "generic_unet", "ResidualEncoderUNet": "residual_unet"}
#: torch layer class names as plans spell them (last path component) -> segforge layer names
NORMS = {"InstanceNorm2d": "instance", "InstanceNorm3d": "instance", "BatchNorm2d": "batch", "BatchNorm3d": "batch"}
NONLINS = {"LeakyReLU": "leaky_relu", "ReLU": "relu", "GELU": "gelu"}
CONVS = {"Conv2d": 2, "Conv3d": 3}
DROPOUTS = {"Dropout", "Dropout2d", "Dropout3d"}
#: arch_kwargs that change nothing at inference or are covered by another field
_IGNORED = {"n_stages", "conv_op", "dropout_op", "dropout_op_kwargs", "deep_supervision"}
_HINT = (
    "segforge runs nnU-Net's PlainConvUNet and ResidualEncoderUNet (basic blocks, conv -> norm -> nonlin); "
    "predict this model with nnU-Net itself"
)

#: (pattern, replacement) from dynamic_network_architectures' module paths to segforge's
_KEY_RULES = [
    (re.compile(r"^encoder\.stages\.(\d+)\.0\.convs\.(\d+)\."), r"encoder.stages.\1.\2."),
    (re.compile(r"^encoder\.stages\.(\d+)\.blocks\.(\d+)\."), r"encoder.stages.\1.\2."),
    (re.compile(r"^encoder\.stem\.convs\.(\d+)\."), r"encoder.stem.\1."),
    (re.compile(r"^decoder\.stages\.(\d+)\.convs\.(\d+)\."), r"decoder.stages.\1.\2."),
]


def _short(path: Any) -> str:
    return str(path).rsplit(".", 1)[-1] if path else ""


def _field_error(where: str, what: str) -> ConfigError:
    return ConfigError(f"{where}: {what}", hint=_HINT)


def _layer(table: dict[str, str], value: Any, field: str, where: str) -> str:
    name = _short(value)
    if name not in table:
        raise _field_error(
            where, f"arch_kwargs.{field} '{value}' has no segforge equivalent (supported: {', '.join(sorted(table))})"
        )
    return table[name]


def _kwargs(value: Any, accepted: set[str], field: str, where: str) -> dict[str, Any]:
    kwargs = dict(value or {})
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise _field_error(where, f"arch_kwargs.{field} has {', '.join(unknown)}, which segforge's layers do not take")
    return kwargs


def _dropout(kw: dict[str, Any], where: str) -> float:
    if kw.get("dropout_op") is None:
        return 0.0
    if _short(kw["dropout_op"]) not in DROPOUTS:
        raise _field_error(where, f"arch_kwargs.dropout_op '{kw['dropout_op']}' is not a channel dropout")
    return float((kw.get("dropout_op_kwargs") or {}).get("p", 0.0))  # inactive at inference either way


def network_spec(architecture: dict[str, Any], where: str) -> tuple[str, dict[str, Any]]:
    """``(segforge network name, params)`` for a plans ``architecture`` entry; ConfigError when unsupported."""
    class_name = str(architecture.get("network_class_name", ""))
    network = NETWORKS.get(_short(class_name))
    if network is None or not class_name.startswith("dynamic_network_architectures."):
        raise _field_error(where, f"network_class_name '{class_name}' is not one segforge can run")
    kw = dict(architecture.get("arch_kwargs") or {})
    for flag in ("nonlin_first", "squeeze_excitation"):
        if kw.get(flag):
            raise _field_error(where, f"arch_kwargs.{flag} is set")
    if kw.get("block") is not None and _short(kw["block"]) != "BasicBlockD":
        raise _field_error(where, f"arch_kwargs.block '{kw['block']}' (only basic residual blocks are supported)")
    if kw.get("stochastic_depth_p") or kw.get("bottleneck_channels") or kw.get("pool_type", "conv") != "conv":
        raise _field_error(where, "arch_kwargs use stochastic depth, bottleneck channels or pooling layers")
    dims = CONVS.get(_short(kw.get("conv_op")))
    if dims is None:
        raise _field_error(where, f"arch_kwargs.conv_op '{kw.get('conv_op')}' is not Conv2d or Conv3d")
    n_stages = int(kw.get("n_stages", len(kw.get("features_per_stage", []))))
    features = kw.get("features_per_stage")
    features = [int(features)] * n_stages if isinstance(features, int) else [int(f) for f in features]
    kernels = [[int(k)] * dims if isinstance(k, int) else [int(v) for v in k] for k in kw["kernel_sizes"]]
    strides = [[int(s)] * dims if isinstance(s, int) else [int(v) for v in s] for s in kw["strides"]]
    params: dict[str, Any] = {
        "features_per_stage": features,
        "kernel_sizes": kernels,
        "strides": strides,
        "n_conv_per_stage_decoder": kw["n_conv_per_stage_decoder"],
        "conv_bias": bool(kw.get("conv_bias", False)),
        "norm": _layer(NORMS, kw.get("norm_op"), "norm_op", where),
        "norm_kwargs": _kwargs(
            kw.get("norm_op_kwargs"), {"eps", "momentum", "affine", "track_running_stats"}, "norm_op_kwargs", where
        ),
        "nonlin": _layer(NONLINS, kw.get("nonlin"), "nonlin", where),
        "nonlin_kwargs": _kwargs(
            kw.get("nonlin_kwargs"), {"negative_slope", "inplace", "approximate"}, "nonlin_kwargs", where
        ),
        "dropout": _dropout(kw, where),
    }
    if kw.get("norm_op") is None:
        raise _field_error(where, "arch_kwargs.norm_op is null (segforge's U-Nets always normalize)")
    _defaults_of_torch(params)
    if network == "generic_unet":
        params["n_conv_per_stage"] = kw["n_conv_per_stage"]
    else:
        params["n_blocks_per_stage"] = kw["n_blocks_per_stage"]
        if kw.get("stem_channels") is not None:
            params["stem_channels"] = int(kw["stem_channels"])
    used = (
        set(params)
        | _IGNORED
        | {
            "n_conv_per_stage",
            "n_blocks_per_stage",
            "stem_channels",
            "norm_op",
            "norm_op_kwargs",
            "nonlin_kwargs",
            "block",
            "nonlin_first",
            "squeeze_excitation",
            "stochastic_depth_p",
            "bottleneck_channels",
            "pool_type",
        }
    )
    unknown = sorted(set(kw) - used)
    if unknown:
        raise _field_error(where, f"arch_kwargs has {', '.join(unknown)}, which segforge does not know")
    return network, params


def _defaults_of_torch(params: dict[str, Any]) -> None:
    """Layer kwargs nnU-Net left out mean torch's defaults; segforge's layers default to nnU-Net's values.

    So a plain ``LeakyReLU`` (slope 0.01 in torch) and ``InstanceNorm3d`` without kwargs (affine False in
    torch) are spelled out rather than silently taking segforge's defaults.
    """
    norm_defaults = {"eps": 1e-5, "affine": params["norm"] == "batch"}
    for key, value in norm_defaults.items():
        params["norm_kwargs"].setdefault(key, value)
    if params["nonlin"] == "leaky_relu":
        params["nonlin_kwargs"].setdefault("negative_slope", 1e-2)
    if params["nonlin"] in ("leaky_relu", "relu"):
        params["nonlin_kwargs"].setdefault("inplace", False)


def convert_state_dict(
    nnunet_state: dict[str, torch.Tensor], target: dict[str, torch.Tensor], where: str
) -> dict[str, torch.Tensor]:
    """nnU-Net's weights under segforge's names; ConfigError unless they cover ``target`` exactly, same shapes."""
    out: dict[str, Any] = {}
    for key, tensor in nnunet_state.items():
        if ".all_modules." in key or key.startswith("decoder.encoder."):
            continue  # aliases of tensors listed under their own names
        new = key
        for pattern, repl in _KEY_RULES:
            new = pattern.sub(repl, new)
        if new not in target:
            raise ConfigError(f"{where}: weight '{key}' has no place in segforge's network (as '{new}')", hint=_HINT)
        if tuple(tensor.shape) != tuple(target[new].shape):
            raise ConfigError(
                f"{where}: weight '{key}' has shape {list(tensor.shape)}, segforge's '{new}' {list(target[new].shape)}",
                hint="the checkpoint does not belong to this plans.json; copy the whole model folder again",
            )
        out[new] = tensor.detach().clone()
    missing = [k for k in target if k not in out]
    if missing:
        raise ConfigError(
            f"{where}: the checkpoint lacks {len(missing)} weight(s), e.g. '{missing[0]}'",
            hint="the checkpoint does not belong to this plans.json; copy the whole model folder again",
        )
    return {k: out[k] for k in target}


def same_state_dict(
    nnunet_state: dict[str, torch.Tensor], target: dict[str, torch.Tensor], where: str
) -> dict[str, torch.Tensor]:
    """nnU-Net's weights for nnU-Net's own class (``nnunet_dna``): the same names and shapes, or ConfigError."""
    hint = "the checkpoint does not belong to this plans.json; copy the whole model folder again"
    unknown = [k for k in nnunet_state if k not in target]
    missing = [k for k in target if k not in nnunet_state]
    if unknown or missing:
        what = f"has weight '{unknown[0]}' the network lacks" if unknown else f"lacks weight '{missing[0]}'"
        raise ConfigError(f"{where}: the checkpoint {what} ({len(unknown)} unknown, {len(missing)} missing)",
                          hint=hint)  # fmt: skip
    for key, tensor in nnunet_state.items():
        if tuple(tensor.shape) != tuple(target[key].shape):
            raise ConfigError(f"{where}: weight '{key}' has shape {list(tensor.shape)}, the network's "
                              f"{list(target[key].shape)}", hint=hint)  # fmt: skip
    return {k: nnunet_state[k].detach().clone() for k in target}
