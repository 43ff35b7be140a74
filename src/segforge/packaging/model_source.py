"""One entry point from "a model the user pointed at" to the folder segforge's predictor loads.

``segforge predict -m``, :meth:`segforge.api.Predictor.from_package` and
:meth:`segforge.api.Predictor.from_nnunet` all call :func:`resolve_model_source`, so a package
zip, an nnU-Net v2 model folder and a segforge run folder are told apart in one place and every
caller gets the same checks.

Contract (shared with :mod:`segforge.interop.nnunet`):

``resolve_model_source(path, *, folds=None, checkpoint="final", cache_dir=None) -> Path``
returns a **model directory**: the folder that :func:`segforge.inference.model_loading.fold_folders`
and :func:`~segforge.inference.model_loading.load_ensemble` read for a trained run, i.e.

- ``fold_<N>/checkpoint_{best,final,latest}.pt`` (``N`` a number or ``all``), each a segforge
  checkpoint readable by :func:`segforge.training.checkpoint.load_checkpoint` (``weights_only``;
  it carries the plans JSON, configuration name and network spec, so nothing else is needed
  to predict);
- optionally ``postprocessing.json`` (applied by ``predict``), ``plans.json``, ``dataset.json``
  and ``inference_instructions.json`` beside the fold folders.

A fold folder (``.../fold_0``) is also a valid answer: the loaders accept one. The returned
folder must stay valid after the call: it is never a temporary directory.

What ``path`` may be:

1. a **segforge model package** (a ``.zip`` file written by ``segforge export-model``): verified
   (member allow-list, no path traversal or links, no pickles, sha256 of every member against
   the package manifest), plugin requirements checked, then unpacked once into
   ``<cache>/models/<sha256 of the zip>/`` and the run folder inside it returned. A second call
   with the same zip reuses the unpacked copy.
2. an **nnU-Net v2 model folder** (holds ``plans.json``, ``dataset.json`` and
   ``fold_*/checkpoint_*.pth``): converted by
   ``segforge.interop.nnunet.to_model_directory(folder, out_dir, *, folds=folds, checkpoint=checkpoint)
   -> Path`` (imported lazily) into ``out_dir = <cache>/nnunet/<key>/``, where ``key`` digests the
   folder's resolved path and the size and modification time of its plans, dataset and chosen
   checkpoint files. ``to_model_directory`` writes only into ``out_dir`` (which may not exist yet),
   returns the model directory it wrote (``out_dir`` or a folder inside it) and may return early
   when ``out_dir`` already holds a complete conversion. Refusals (pickled payloads, unknown
   architectures) are :class:`segforge.errors.SegforgeError` subclasses with a hint.
3. anything else that is a **directory** (a segforge run folder or fold folder): returned unchanged.

``<cache>`` is ``cache_dir`` when given, else ``$SEGFORGE_CACHE``, else
``$XDG_CACHE_HOME/segforge`` (``~/.cache/segforge``): prediction from a package or an nnU-Net
folder needs no results folder.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from segforge.errors import UsageError
from segforge.settings import cache_root


def is_nnunet_model_folder(path: Path) -> bool:
    """plans.json + dataset.json + at least one ``fold_*/checkpoint_*.pth``: what nnU-Net v2 trains into."""
    return (
        path.is_dir()
        and (path / "plans.json").is_file()
        and (path / "dataset.json").is_file()
        and any(path.glob("fold_*/checkpoint_*.pth"))
    )


def nnunet_cache_key(folder: Path, folds: list[str] | None, checkpoint: str) -> str:
    """A digest that changes when the folder, its plans/dataset or the chosen checkpoints change."""
    folder = folder.resolve()
    parts = [str(folder), checkpoint, ",".join(folds or [])]
    files = [folder / "plans.json", folder / "dataset.json", *sorted(folder.glob("fold_*/checkpoint_*.pth"))]
    for file in files:
        stat = file.stat()
        parts.append(f"{file.relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:24]


def resolve_model_source(
    path: str | os.PathLike[str],
    *,
    folds: list[str] | None = None,
    checkpoint: str = "final",
    cache_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """The model directory ``path`` stands for (package zip, nnU-Net v2 folder or segforge run folder)."""
    path = Path(path).expanduser()
    if path.is_file():
        from segforge.packaging.package_unpack import unpack_package

        return unpack_package(path, cache_root(cache_dir) / "models")
    if not path.exists():
        raise UsageError(
            f"model {path} does not exist",
            hint="pass a run or fold folder, a model package (.zip) or an nnU-Net v2 model folder",
        )
    if is_nnunet_model_folder(path):
        from segforge.interop.nnunet import to_model_directory

        out_dir = cache_root(cache_dir) / "nnunet" / nnunet_cache_key(path, folds, checkpoint)
        return Path(to_model_directory(path, out_dir, folds=folds, checkpoint=checkpoint))
    return path


def find_model_dir(task: str | None, model_dir: Path | None, config: str, trainer: str | None, network: str | None,
                   plans: str | None, registries: Any = None, *, folds: list[str] | None = None,
                   checkpoint: str = "final") -> Path:  # fmt: skip
    """``-m`` as given, else the run of ``--task`` the options mean (:mod:`segforge.inference.run_lookup`).

    ``-m`` may also be a model package (``.zip``) or an nnU-Net v2 model folder: both become a
    model directory through :func:`resolve_model_source`.
    """
    from segforge.errors import UsageError
    from segforge.inference.model_loading import find_dataset_folder
    from segforge.inference.run_lookup import RunQuery, choose_run
    from segforge.settings import get_folders

    if model_dir is not None:
        if not model_dir.exists():
            raise UsageError(f"model folder {model_dir} does not exist", hint="pass a results run or fold folder")
        return resolve_model_source(model_dir, folds=folds, checkpoint=checkpoint)
    if task is None:
        raise UsageError("pass --task N (or -m MODEL_DIR)", hint="e.g. segforge predict -i imagesTs -o preds --task 4")
    config_dir = find_dataset_folder(get_folders().results.path, task) / config
    return choose_run(config_dir, RunQuery(config, trainer, network, plans), registries)
