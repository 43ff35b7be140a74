"""An nnU-Net v2 model folder as a segforge model directory (what ``segforge predict -m`` loads).

nnU-Net's ``nnUNetv2_predict_from_modelfolder`` takes ``plans.json``, ``dataset.json`` and
``fold_N/checkpoint_{final,best,latest}.pth``. :func:`to_model_directory` writes the same model as
a segforge run folder::

    out_dir/<dataset_name>/<configuration>/<nnU-Net trainer>__<network>__<plans_name>/
        plans.json  dataset.json  nnunet_import.json  fold_N/checkpoint_<which>.pt

Each checkpoint is a regular segforge checkpoint (plans JSON, configuration, network spec and
weights under segforge's module names, nnU-Net's ``inference_allowed_mirroring_axes``), so the
existing predictor, ``load_ensemble`` and ``export-model`` use it unchanged. The nnU-Net
checkpoints are read without executing anything (:mod:`.checkpoint`); training-only state
(optimizer, logs) is not carried over.

``nnunet_import.json`` is written last: its presence means the conversion is complete, and a
second call with the same ``out_dir`` returns at once (the model-source cache relies on it).
"""

from __future__ import annotations

import json
import os
from importlib import metadata
from pathlib import Path
from typing import Any

from segforge.errors import ConfigError, UsageError
from segforge.interop.nnunet import dna_network
from segforge.interop.nnunet.architecture import convert_state_dict, network_spec, same_state_dict
from segforge.interop.nnunet.checkpoint import load_nnunet_checkpoint
from segforge.interop.nnunet.plans import convert_plans, legacy_architecture, read_json, resolved_configuration

IMPORT_RECORD = "nnunet_import.json"
IMPORT_FORMAT_VERSION = 1


def nnunet_checkpoint_key(checkpoint: str) -> str:
    """``final`` / ``best`` / ``latest`` for segforge's and nnU-Net's spellings (``checkpoint_final.pth``...)."""
    from segforge.inference.model_loading import CHECKPOINT_ALIASES, CHECKPOINT_NAMES

    text = str(checkpoint).strip()
    stem = text.removesuffix(".pth").removesuffix(".pt").removeprefix("checkpoint_")
    key = CHECKPOINT_ALIASES.get(text, CHECKPOINT_ALIASES.get(stem, stem))
    if key not in CHECKPOINT_NAMES:
        raise UsageError(f"unknown checkpoint '{checkpoint}'", hint="choose final, best or latest")
    return key


def _fold_checkpoints(folder: Path, folds: list[str] | None, key: str) -> list[Path]:
    from segforge.inference.model_loading import fold_folders

    paths = []
    for fold in fold_folders(folder, folds):
        path = fold / f"checkpoint_{key}.pth"
        if not path.is_file():
            present = sorted(p.name for p in fold.glob("checkpoint_*.pth"))
            raise UsageError(
                f"{path} not found (this fold has: {', '.join(present) or 'no checkpoints'})",
                hint="choose another --checkpoint (final, best, latest) or --folds",
            )
        paths.append(path)
    return paths


def _channels(dataset: dict[str, Any], where: Path) -> int:
    names = dataset.get("channel_names") or dataset.get("modality")
    if not isinstance(names, dict) or not names:
        raise ConfigError(f"{where}: no channel_names", hint="copy dataset.json again from nnU-Net's results")
    return len(names)


def _segforge_network(plans_json: dict[str, Any], configuration: str, where: str) -> tuple[str, str, dict, Any]:
    """(network name, builder version, params, registry entry) for the configuration's architecture."""
    from segforge.plugins import get_registries

    conf = resolved_configuration(plans_json, configuration, where)
    architecture = conf.get("architecture") or (legacy_architecture(conf) if "UNet_class_name" in conf else None)
    if architecture is None:
        raise ConfigError(
            f"{where}: configurations.{configuration} has no architecture",
            hint="copy plans.json again from nnU-Net's results",
        )
    name, params = _network_or_dna(architecture, f"{where} (configurations.{configuration}.architecture)")
    entry = get_registries().network.entry(name)
    try:
        parsed = entry.component.parse_params(params)
    except Exception as exc:  # pydantic ValidationError or ConfigError from the builder
        reason = " ".join(str(exc).split())[:240]
        raise ConfigError(
            f"{where}: configurations.{configuration}.architecture does not fit {name} ({reason})",
            hint="predict this model with nnU-Net itself",
        ) from None
    return name, entry.version, parsed.model_dump(mode="json"), entry


def _network_or_dna(architecture: dict[str, Any], where: str) -> tuple[str, dict[str, Any]]:
    """The builtin U-Net for the architecture or, where that cannot express it, nnU-Net's own class.

    The fallback needs dynamic_network_architectures (:mod:`.dna_network`); without it the
    refusal names the pip line that enables it.
    """
    try:
        return network_spec(architecture, where)
    except ConfigError as exc:
        if not dna_network.available():
            raise ConfigError(
                exc.message,
                hint=f"pip install {dna_network.DIST} (segforge then runs nnU-Net's own network class), "
                "or predict this model with nnU-Net itself",
            ) from None
    requires = architecture.get("_kw_requires_import") or []
    return dna_network.NnunetDnaBuilder.name, {
        "network_class_name": str(architecture.get("network_class_name", "")),
        "arch_kwargs": dict(architecture.get("arch_kwargs") or {}),
        "requires_import": [str(k) for k in requires],
    }


def _target_state(entry: Any, params: dict[str, Any], in_channels: int, num_classes: int) -> dict[str, Any]:
    """segforge's state dict for the network (built on the meta device: shapes only, no memory)."""
    import torch

    with torch.device("meta"):
        net = entry.component.build(
            entry.component.parse_params(params), in_channels, num_classes, deep_supervision=False
        )
    return net.state_dict()


def _segforge_payload(
    nn_payload: dict[str, Any],
    plans: Any,
    configuration: str,
    network: dict[str, Any],
    weights: dict[str, Any],
    source: str,
) -> dict[str, Any]:
    from segforge._version import __version__
    from segforge.training.checkpoint import CHECKPOINT_FORMAT_VERSION

    mirror = nn_payload.get("inference_allowed_mirroring_axes")
    return {
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "segforge_version": __version__,
        "network_weights": weights,
        "optimizer_state": {},
        "grad_scaler_state": None,
        "schedule": {},
        "progress": {"iteration": 0, "epoch": int(nn_payload.get("current_epoch") or 0)},
        "logs": {},
        "rng": {},
        "seed": 0,
        "plans_json": plans.model_dump_json(),
        "configuration": configuration,
        "network": network,
        "trainer": {"name": str(nn_payload.get("trainer_name", "nnUNetTrainer")), "version": "nnunetv2", "params": {}},
        "loss": {},
        "versions": {"segforge": __version__},
        "inference_allowed_mirroring_axes": None if mirror is None else [int(a) for a in mirror],
        "imported_from": source,
    }


def _configuration_of(payload: dict[str, Any], path: Path) -> str:
    init_args = payload.get("init_args") if isinstance(payload.get("init_args"), dict) else {}
    configuration = init_args.get("configuration")
    if not isinstance(configuration, str):
        raise ConfigError(
            f"{path}: the checkpoint does not say its configuration (init_args.configuration)",
            hint="pass a checkpoint written by nnU-Net v2's trainer",
        )
    return configuration


def _finished(out_dir: Path) -> Path | None:
    record = out_dir / IMPORT_RECORD
    if not record.is_file():
        return None
    try:
        run = out_dir / json.loads(record.read_text(encoding="utf-8"))["model_directory"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return run if run.is_dir() else None


def to_model_directory(
    nnunet_folder: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    folds: list[str] | None = None,
    checkpoint: str = "final",
) -> Path:
    """Convert an nnU-Net v2 model folder into a segforge run folder inside ``out_dir``; returns the run folder.

    ``folds``: fold names (``["0", "1"]``, ``["all"]``), default every ``fold_*`` present;
    ``checkpoint``: final / best / latest (nnU-Net's ``checkpoint_final.pth`` spelling works too).
    Refusals (pickled code, unsupported architectures or preprocessing) raise SegforgeError subclasses
    before anything is written.
    """
    from segforge.atomic import atomic_write_json, atomic_write_text
    from segforge.config.label_scheme import LabelScheme
    from segforge.inference.model_loading import CHECKPOINT_NAMES
    from segforge.training.checkpoint import save_checkpoint

    folder, out_dir = Path(nnunet_folder), Path(out_dir)
    done = _finished(out_dir)
    if done is not None:
        return done
    key = nnunet_checkpoint_key(checkpoint)
    plans_json = read_json(folder / "plans.json")
    dataset = read_json(folder / "dataset.json")
    converted: list[tuple[str, dict[str, Any]]] = []
    configuration = None
    for path in _fold_checkpoints(folder, folds, key):
        payload = load_nnunet_checkpoint(path)
        conf_name = _configuration_of(payload, path)
        if configuration is None:
            configuration = conf_name
            where = str(folder / "plans.json")
            name, version, params, entry = _segforge_network(plans_json, configuration, where)
            plans = convert_plans(plans_json, dataset, configuration, (name, version, params), where)
            in_channels = _channels(dataset, folder / "dataset.json")
            num_classes = LabelScheme.from_plans(plans).num_outputs
            target = _target_state(entry, params, in_channels, num_classes)
            network = {
                "name": name,
                "version": version,
                "params": params,
                "in_channels": in_channels,
                "num_classes": num_classes,
                "deep_supervision": False,
                "origin": entry.origin.as_dict(),
            }
            if name == dna_network.NnunetDnaBuilder.name:  # a model package must name nnU-Net's network package
                network.update(dist=dna_network.DIST, dist_version=metadata.version(dna_network.DIST))
        elif conf_name != configuration:
            raise ConfigError(
                f"{path} was trained as {conf_name}, the other folds as {configuration}",
                hint="pass --folds with folds of one configuration",
            )
        if network["name"] == dna_network.NnunetDnaBuilder.name:  # nnU-Net's class: its own weight names
            weights = same_state_dict(payload["network_weights"], target, str(path))
        else:
            weights = convert_state_dict(payload["network_weights"], target, str(path))
        source = f"{path.parent.name}/{path.name}"
        converted.append((path.parent.name, _segforge_payload(payload, plans, configuration, network, weights, source)))
        del payload
    trainer = str(converted[0][1]["trainer"]["name"]).replace("__", "_")
    relative = Path(plans.dataset_name) / configuration / f"{trainer}__{network['name']}__{plans.plans_name}"
    run_dir = out_dir / relative
    for fold_name, seg_payload in converted:
        (run_dir / fold_name).mkdir(parents=True, exist_ok=True)
        save_checkpoint(run_dir / fold_name / CHECKPOINT_NAMES[key], seg_payload)
    atomic_write_text(run_dir / "plans.json", plans.model_dump_json(indent=1) + "\n")
    atomic_write_json(run_dir / "dataset.json", dataset)
    atomic_write_json(
        out_dir / IMPORT_RECORD,
        {
            "format_version": IMPORT_FORMAT_VERSION,
            "source": str(folder.resolve()),
            "model_directory": str(relative),
            "configuration": configuration,
            "checkpoint": key,
            "folds": [f for f, _ in converted],
            "network": network["name"],
            "trainer": trainer,
        },
    )
    return run_dir
