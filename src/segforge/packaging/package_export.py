"""``segforge export-model``: one trained run (chosen folds and checkpoint) as a model package zip.

The checkpoints go in slimmed to what prediction reads: the optimizer and grad-scaler state and
the RNG states are emptied (they are only for resuming training and roughly double the file),
every other key stays, so the file is still a valid segforge checkpoint. The layout and the
checks a reader applies are in :mod:`.package_format` and :mod:`.package_verify`.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

from segforge.errors import UsageError
from segforge.packaging.model_card import build_model_card
from segforge.packaging.package_format import MODEL_CARD, PACKAGE_MANIFEST, PackageManifest
from segforge.packaging.requirements import model_requirements

#: emptied in exported checkpoints: resuming training needs them, prediction does not
_TRAINING_ONLY = {"optimizer_state": {}, "grad_scaler_state": None, "rng": {}}


def _slim_checkpoint(path: Path) -> tuple[bytes, Any]:
    import torch

    from segforge.inference.model_loading import load_model, read_checkpoint

    payload = read_checkpoint(path)
    payload.update(_TRAINING_ONLY)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue(), load_model(path)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=2, allow_nan=False) + "\n").encode("utf-8")


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def dataset_json_of(dataset: str) -> Path | None:
    """The dataset's ``dataset.json`` in the preprocessed, else the raw folder (None when neither has it)."""
    from segforge.settings import get_folders

    folders = get_folders()
    for root in (folders.preprocessed.path, folders.raw.path):
        if (root / dataset / "dataset.json").is_file():
            return root / dataset / "dataset.json"
    return None


def export_package(
    run_dir: Path,
    out: Path,
    *,
    folds: list[str] | None,
    checkpoint: str,
    registries: Any,
    licence: str | None = None,
    authors: list[str] | None = None,
    description: str | None = None,
) -> PackageManifest:
    """Write the package of ``run_dir`` to ``out`` atomically; returns its manifest."""
    from segforge._version import __version__
    from segforge.atomic import atomic_path
    from segforge.inference.model_loading import checkpoint_name, fold_folders
    from segforge.inference.run_lookup import TrainedRun

    run = TrainedRun.parse(run_dir)
    if run is None:
        raise UsageError(f"{run_dir} is not a run folder (<trainer>__<network>__<plans>)",
                         hint="pick the run with --task/--config/--trainer/--network/--plans")  # fmt: skip
    dataset, configuration = run_dir.parents[1].name, run_dir.parent.name
    name = checkpoint_name(checkpoint)
    fold_dirs = fold_folders(run_dir, folds)
    members: dict[str, bytes] = {}
    model_dir = f"{dataset}/{configuration}/{run_dir.name}"
    first = None
    for fold in fold_dirs:
        if not (fold / name).is_file():
            raise UsageError(f"{fold / name} not found", hint="choose another --checkpoint or --folds")
        data, model = _slim_checkpoint(fold / name)
        first = first or model
        if model.configuration.previous_stage is not None:
            raise UsageError(f"{configuration} is a cascade stage: exporting cascades is not supported",
                             hint="export the 3d_lowres or 3d_fullres model instead")  # fmt: skip
        members[f"{model_dir}/{fold.name}/{name}"] = data
        if (fold / "manifest.json").is_file():
            members[f"{model_dir}/{fold.name}/manifest.json"] = (fold / "manifest.json").read_bytes()
    assert first is not None  # fold_folders returns at least one folder
    fold_manifest = _read_json(fold_dirs[0] / "manifest.json")
    members[f"{model_dir}/plans.json"] = _json_bytes(first.plans.model_dump(mode="json"))
    # an installed package or an imported nnU-Net model carries its own; a run trained here finds the dataset's
    dataset_json_path = run_dir / "dataset.json" if (run_dir / "dataset.json").is_file() else dataset_json_of(dataset)
    dataset_json = _read_json(dataset_json_path) if dataset_json_path else None
    if dataset_json is not None:
        members[f"{model_dir}/dataset.json"] = _json_bytes(dataset_json)
    for extra in (run_dir / "postprocessing.json", run_dir.parents[1] / "inference_instructions.json"):
        if extra.is_file():
            members[f"{model_dir}/{extra.name}"] = extra.read_bytes()
    card = build_model_card(model=first, run=run, fold_dirs=fold_dirs, checkpoint=checkpoint,
                            dataset_json=dataset_json, fold_manifest=fold_manifest, licence=licence,
                            authors=authors or [], description=description)  # fmt: skip
    members[MODEL_CARD] = _json_bytes(card.model_dump(mode="json"))
    manifest = PackageManifest(
        segforge_version=__version__, created=_now(),
        dataset=dataset, configuration=configuration, trainer=run.trainer, network=run.network, plans=run.plans,
        folds=[d.name.removeprefix("fold_") for d in fold_dirs], checkpoint=checkpoint,
        requirements=model_requirements(first.network_spec, first.plans, registries, fold_manifest),
        files={n: hashlib.sha256(b).hexdigest() for n, b in sorted(members.items())},
    )  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out, ".zip") as tmp, zipfile.ZipFile(tmp, "w") as archive:
        archive.writestr(PACKAGE_MANIFEST, _json_bytes(manifest.model_dump(mode="json")), zipfile.ZIP_DEFLATED)
        for member, data in sorted(members.items()):
            archive.writestr(member, data, zipfile.ZIP_STORED if member.endswith(".pt") else zipfile.ZIP_DEFLATED)
    return manifest
