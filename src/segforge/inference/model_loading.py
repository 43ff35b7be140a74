"""Finding trained models and rebuilding their networks from checkpoints alone.

A training run lives in ``<results>/<dataset>/<config>/<trainer>__<network>__<plans>/fold_N/``
with ``checkpoint_{best,final,latest}.pt`` (:mod:`segforge.artifacts.checkpoint`). A checkpoint
holds the plans (JSON), the configuration name, the network spec (registry name, version,
params, plugin distribution) and the weights, so prediction needs no other file — only the
network builder, which comes from the registry. When it is missing, the error names the
distribution that provided it when the model was trained ("install segforge-swinunet").
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segforge.config.plans import ConfigurationPlan, Plans
from segforge.errors import ConfigError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

CHECKPOINT_NAMES = {"best": "checkpoint_best.pt", "final": "checkpoint_final.pt", "latest": "checkpoint_latest.pt"}
#: nnU-Net's spellings of --checkpoint values
CHECKPOINT_ALIASES = {"model_best": "best", "model_final": "final", "model_final_checkpoint": "final",
                      "model_latest": "latest", "checkpoint_best.pt": "best", "checkpoint_final.pt": "final",
                      "checkpoint_latest.pt": "latest", "checkpoint_best.pth": "best",
                      "checkpoint_final.pth": "final", "checkpoint_latest.pth": "latest"}  # fmt: skip
_FOLD_RE = re.compile(r"^fold_(\d+|all)$")
_TRAIN_HINT = "train it first with `segforge train`, or point -m at a results folder"


@dataclass
class LoadedModel:
    """What prediction needs from one fold's checkpoint."""

    path: Path
    plans: Plans
    configuration: ConfigurationPlan
    network_spec: dict[str, Any]
    weights: dict[str, Any]
    mirror_axes: tuple[int, ...] | None
    in_channels: int
    num_classes: int


# -- finding folders ------------------------------------------------------------------------
def checkpoint_name(which: str) -> str:
    """``best`` / ``final`` / ``latest`` (or nnU-Net's ``model_best``...) to a file name."""
    key = CHECKPOINT_ALIASES.get(which, which)
    if key not in CHECKPOINT_NAMES:
        raise UsageError(f"unknown checkpoint '{which}'", hint="choose best, final or latest")
    return CHECKPOINT_NAMES[key]


def find_dataset_folder(results_root: Path, task: str) -> Path:
    """``<results>/TaskNNN_Name`` (or ``DatasetNNN_Name``) for ``4``, ``004`` or a folder name."""
    from segforge.io.layouts import task_id_of

    text = str(task).strip()
    if (results_root / text).is_dir():
        return results_root / text
    wanted = int(text) if text.isdigit() else task_id_of(text)
    if wanted is None:
        raise UsageError(f"'{task}' is not a task: use its number (4, 004) or folder name (Task004_Name)")
    found = sorted(p for p in results_root.iterdir() if p.is_dir() and task_id_of(p.name) == wanted) \
        if results_root.is_dir() else []  # fmt: skip
    if len(found) != 1:
        what = "no trained model" if not found else f"{len(found)} result folders ({', '.join(p.name for p in found)})"
        raise UsageError(f"{what} for task {wanted} in {results_root}", hint=_TRAIN_HINT)
    return found[0]


def model_folder(
    results_root: Path, task: str, configuration: str, trainer: str, network: str, plans_name: str
) -> Path:
    """``<results>/<dataset>/<config>/<trainer>__<network>__<plans>``; missing -> UsageError listing what exists."""
    config_dir = find_dataset_folder(results_root, task) / configuration
    folder = config_dir / f"{trainer}__{network}__{plans_name}"
    if not folder.is_dir():
        existing = sorted(p.name for p in config_dir.iterdir() if p.is_dir()) if config_dir.is_dir() else []
        raise UsageError(
            f"no trained model at {folder} (trained here: {', '.join(existing) or 'nothing'})",
            hint="choose --config/--trainer/--network/--plans matching a trained model, or train it first",
        )
    return folder


def fold_folders(model_dir: Path, folds: list[str] | None) -> list[Path]:
    """The fold folders to use: ``folds`` (``["0", "1"]``, ``["all"]`` = fold_all) or every one present.

    ``model_dir`` may itself be a fold folder (``-m .../fold_0``).
    """
    model_dir = Path(model_dir)
    if _FOLD_RE.match(model_dir.name):
        return [model_dir]
    present = sorted(p for p in model_dir.glob("fold_*") if p.is_dir() and _FOLD_RE.match(p.name))
    if not folds:
        if not present:
            raise UsageError(f"no fold_* folders in {model_dir}", hint=_TRAIN_HINT)
        return present
    wanted = [model_dir / f"fold_{f}" for f in folds]
    missing = [p.name for p in wanted if not p.is_dir()]
    if missing:
        raise UsageError(
            f"{model_dir}: {', '.join(missing)} not found (present: {', '.join(p.name for p in present) or 'none'})",
            hint="pass --folds with trained folds, or train the missing ones",
        )
    return wanted


# -- loading ----------------------------------------------------------------------------------
def _plans_from(payload: dict[str, Any], path: Path) -> Plans:
    from pydantic import ValidationError

    raw = payload.get("plans_json", payload.get("plans"))
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
        return Plans.model_validate(data)
    except (ValueError, ValidationError) as exc:
        reason = str(exc).splitlines()[0]
        raise ConfigError(f"{path}: the plans stored in the checkpoint are invalid ({reason})",
                          hint="re-train with this segforge version") from None  # fmt: skip


def _mirror_axes(payload: dict[str, Any], dims: int) -> tuple[int, ...] | None:
    """The axes mirrored in training (inference mirrors only those); all axes when not recorded."""
    for key in ("mirror_axes", "inference_allowed_mirroring_axes"):
        if key in payload:
            value = payload[key]
            return tuple(int(a) for a in value) if value else None
    trainer = payload.get("trainer") or {}
    aug = (trainer.get("params") or {}).get("augmentation") if isinstance(trainer, dict) else None
    if isinstance(aug, dict) and aug.get("mirror_axes") is not None:
        return tuple(int(a) for a in aug["mirror_axes"]) or None
    return tuple(range(dims))


def _int_field(spec: dict[str, Any], names: tuple[str, ...], default: int) -> int:
    for name in names:
        if isinstance(spec.get(name), int):
            return int(spec[name])
    return default


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A checkpoint's payload through training's reader (``weights_only=True``)."""
    from segforge.artifacts.checkpoint import load_checkpoint

    return load_checkpoint(path)


def load_model(path: str | os.PathLike[str]) -> LoadedModel:
    """Read one checkpoint and what it says about its plans, network and mirroring."""
    path = Path(path)
    payload = read_checkpoint(path)
    plans = _plans_from(payload, path)
    conf = plans.configuration(str(payload["configuration"]))
    spec = dict(payload["network"])
    from segforge.config.label_scheme import LabelScheme

    n_classes = LabelScheme.from_plans(plans).num_outputs  # ignore label excluded; one per region
    return LoadedModel(
        path=path, plans=plans, configuration=conf, network_spec=spec, weights=payload["network_weights"],
        mirror_axes=_mirror_axes(payload, conf.dims),
        in_channels=_int_field(spec, ("in_channels", "num_input_channels", "channels"), len(conf.normalization)),
        num_classes=_int_field(spec, ("num_classes", "classes", "num_output_channels"), n_classes),
    )  # fmt: skip


def network_builder(spec: dict[str, Any], registries: Any = None) -> Any:
    """The registered builder for a checkpoint's network; missing -> error naming the plugin to install."""
    from segforge.errors import ComponentNotFoundError

    if registries is None:
        from segforge.plugins import get_registries

        registries = get_registries()
    name = str(spec.get("name"))
    origin = spec.get("origin") if isinstance(spec.get("origin"), dict) else {}
    dist = spec.get("dist") or origin.get("dist")
    dist_version = spec.get("dist_version") or origin.get("version")
    try:
        entry = registries.network.entry(name)
    except ComponentNotFoundError as exc:
        if dist and dist != "segforge":
            version = f"=={dist_version}" if dist_version else ""
            raise ConfigError(
                f"the model was trained with network '{name}' from {dist}, which is not installed: install {dist}",
                hint=f"install {dist} (pip install {dist}{version}), then predict again",
            ) from None
        raise ConfigError(f"the model's network '{name}' is not registered", hint=exc.hint) from None
    if dist and dist != "segforge" and dist_version:
        from segforge.inference.provenance import check_major_version

        check_major_version(name, dist, str(dist_version), entry.origin)
    return entry.component


def build_network(model: LoadedModel, registries: Any = None) -> nn.Module:
    """The network with its weights, deep supervision off, in eval mode."""
    builder = network_builder(model.network_spec, registries)
    net = builder.build(builder.parse_params(model.network_spec.get("params", {})), model.in_channels,
                        model.num_classes, deep_supervision=False)  # fmt: skip
    try:
        net.load_state_dict(model.weights)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise ConfigError(
            f"{model.path}: weights do not fit network '{model.network_spec.get('name')}' ({first})",
            hint="the checkpoint and the installed network version differ; install the version used in training",
        ) from None
    if hasattr(net, "deep_supervision"):
        net.deep_supervision = False
    return net.eval()


def load_ensemble(
    model_dir: Path, folds: list[str] | None, checkpoint: str, registries: Any = None
) -> tuple[list[nn.Module], LoadedModel]:
    """Networks of every selected fold and the first fold's metadata (plans must agree across folds)."""
    name = checkpoint_name(checkpoint)
    models = []
    for fold in fold_folders(model_dir, folds):
        path = fold / name
        if not path.is_file():
            present = sorted(p.name for p in fold.glob("checkpoint_*.pt"))
            raise UsageError(
                f"{path} not found (this fold has: {', '.join(present) or 'no checkpoints'})",
                hint="choose another --checkpoint (best, final, latest) or finish training this fold",
            )
        models.append(load_model(path))
    first = models[0]
    for other in models[1:]:
        if other.plans.model_dump() != first.plans.model_dump() or other.configuration.name != first.configuration.name:
            raise ConfigError(
                f"{other.path} was trained with other plans than {first.path} (were the plans re-made with "
                "--overwrite-plans between the two trainings?)",
                hint="retrain the older fold(s) with the current plans, or pass --folds with folds trained on the "
                "same plans",
            )
    return [build_network(m, registries) for m in models], first
