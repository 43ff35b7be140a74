"""``nnunet_dna``: nnU-Net v2's own network classes, for imported models the builtin U-Nets cannot express.

segforge runs nnU-Net's PlainConvUNet and ResidualEncoderUNet with its builtin U-Nets
(:mod:`.architecture`). nnU-Net model folders also use what those cannot express: residual
encoders with bottleneck or squeeze-excitation blocks, ``nonlin_first``, the ResidualUNet
decoder, other classes of ``dynamic_network_architectures``. Where that package (the one
nnU-Net itself builds its networks with) is installed, such a model runs with nnU-Net's class
as it is, its weights loaded under their own names; without it, the import refuses the model
with the ``pip install`` line.

The params are the plans' ``network_class_name`` and ``arch_kwargs``. A plans file is data, so the
import paths in it are resolved only inside an allow-list: the network class must be an
``nn.Module`` of ``dynamic_network_architectures``, each layer type (``conv_op``, ``norm_op``,
...) an ``nn.Module`` of ``torch.nn``; anything else is refused with one line before any import.
The component is registered only where the package is importable; its :meth:`propose` gives a
PlainConvUNet of the builtin topology, so it passes the network contract kit like any network.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, field_validator, model_validator

from segforge.errors import ConfigError
from segforge.networks.builder import NetworkBuilder, NetworkConstraints, NetworkParams, TopologyRequest

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

#: the distribution segforge needs for this network (the model package's requirement)
DIST = "dynamic-network-architectures"
NETWORK_PACKAGE = "dynamic_network_architectures."
LAYER_PACKAGE = "torch.nn."


def available() -> bool:
    """Whether nnU-Net's network package is importable here."""
    return importlib.util.find_spec("dynamic_network_architectures") is not None


def resolve(path: str, package: str, what: str) -> type:
    """The class at ``path``, which must lie inside ``package`` and be an ``nn.Module``; ConfigError otherwise."""
    from torch import nn

    module_name, _, attr = str(path).rpartition(".")
    if not str(path).startswith(package) or not module_name or not attr.isidentifier():
        raise ConfigError(f"{what} '{path}' is not a class of {package.rstrip('.')}",
                          hint="only nnU-Net's network classes and torch.nn layers are built from plans")  # fmt: skip
    try:
        found = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{what} '{path}' cannot be found ({exc})",
                          hint=f"pip install -U {DIST} (the version the model was trained with)") from None  # fmt: skip
    if not (inspect.isclass(found) and issubclass(found, nn.Module)):
        raise ConfigError(f"{what} '{path}' is not a torch module class", hint="check the plans' architecture")
    return found


class DnaParams(NetworkParams):
    """An nnU-Net v2 plans ``architecture``: class path, keyword arguments, which of them are import paths."""

    network_class_name: str = "dynamic_network_architectures.architectures.unet.PlainConvUNet"
    arch_kwargs: dict[str, Any] = Field(default_factory=dict)
    requires_import: list[str] = Field(default_factory=list)

    @field_validator("network_class_name")
    @classmethod
    def _network_package(cls, value: str) -> str:
        if not value.startswith(NETWORK_PACKAGE):
            raise ValueError(f"'{value}' is not a class of dynamic_network_architectures")
        return value

    @model_validator(mode="after")
    def _layer_paths(self) -> DnaParams:
        for key in self.requires_import:
            value = self.arch_kwargs.get(key)
            if value is not None and not str(value).startswith(LAYER_PACKAGE):
                raise ValueError(f"arch_kwargs.{key} '{value}' is not a torch.nn layer")
        for key in ("strides", "kernel_sizes"):
            if key not in self.arch_kwargs:
                raise ValueError(f"arch_kwargs has no {key}")
        return self

    @property
    def dims(self) -> int:
        conv = str(self.arch_kwargs.get("conv_op", ""))
        return 2 if conv.endswith("2d") else 3


def _per_axis(values: list[Any], dims: int) -> list[list[int]]:
    return [[int(v)] * dims if isinstance(v, int) else [int(x) for x in v] for v in values]


class NnunetDnaBuilder(NetworkBuilder):
    """nnU-Net's network class built from its plans entry (imported nnU-Net models; see the module doc)."""

    name: ClassVar[str] = "nnunet_dna"
    version: ClassVar[str] = "1.0"
    Params: ClassVar[type[DnaParams]] = DnaParams

    def propose(self, request: TopologyRequest) -> DnaParams:
        """A PlainConvUNet of the builtin topology for the request (nnU-Net's own layer choices)."""
        from segforge.networks.generic_unet import GenericUNetBuilder, GenericUNetParams

        plain = GenericUNetBuilder().propose(request)
        assert isinstance(plain, GenericUNetParams)
        dims = len(request.patch_size)
        kwargs = {
            "n_stages": plain.n_stages,
            "features_per_stage": list(plain.features_per_stage),
            "conv_op": f"torch.nn.modules.conv.Conv{dims}d",
            "kernel_sizes": [list(k) for k in plain.kernel_sizes],
            "strides": [list(s) for s in plain.strides],
            "n_conv_per_stage": plain.n_conv_per_stage,
            "n_conv_per_stage_decoder": plain.n_conv_per_stage_decoder,
            "conv_bias": True,
            "norm_op": f"torch.nn.modules.instancenorm.InstanceNorm{dims}d",
            "norm_op_kwargs": {"eps": 1e-05, "affine": True},
            "dropout_op": None,
            "dropout_op_kwargs": None,
            "nonlin": "torch.nn.LeakyReLU",
            "nonlin_kwargs": {"inplace": True},
        }
        return DnaParams(arch_kwargs=kwargs, requires_import=["conv_op", "norm_op", "dropout_op", "nonlin"])

    def parse_params(self, params: dict[str, Any] | NetworkParams) -> DnaParams:
        parsed = super().parse_params(params)
        assert isinstance(parsed, DnaParams)
        return parsed

    def constraints(self, params: NetworkParams | dict[str, Any]) -> NetworkConstraints:
        """Each edge a multiple of the cumulative stride, pooled axes at least twice that (as the builtins)."""
        parsed = self.parse_params(params)
        strides = _per_axis(parsed.arch_kwargs["strides"], parsed.dims)
        divisors = tuple(math.prod(s[axis] for s in strides) for axis in range(parsed.dims))
        return NetworkConstraints(divisors=divisors, min_edge=tuple(2 * d if d > 1 else 1 for d in divisors))

    def build(
        self, params: NetworkParams, in_channels: int, num_classes: int, deep_supervision: bool = True
    ) -> nn.Module:
        params = self.parse_params(params)
        kwargs = dict(params.arch_kwargs)
        for key in params.requires_import:
            if kwargs.get(key) is not None:
                kwargs[key] = resolve(kwargs[key], LAYER_PACKAGE, f"arch_kwargs.{key}")
        network_class = resolve(params.network_class_name, NETWORK_PACKAGE, "network_class_name")
        if "deep_supervision" in inspect.signature(network_class).parameters:
            kwargs["deep_supervision"] = deep_supervision
        network = network_class(input_channels=in_channels, num_classes=num_classes, **kwargs)
        if hasattr(network, "initialize"):  # nnU-Net's He init, as get_network_from_plans applies it
            network.apply(network.initialize)
        # nnU-Net's decoders output one map per decoder stage, full resolution first (the trainer's contract)
        strides = _per_axis(params.arch_kwargs["strides"], params.dims)
        network.deep_supervision_scales = [
            [math.prod(s[axis] for s in strides[: i + 1]) for axis in range(params.dims)]
            for i in range(len(strides) - 1)
        ]
        return network
