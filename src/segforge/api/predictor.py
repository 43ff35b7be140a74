"""``Predictor``: a trained model loaded once, then used for folders, images and arrays.

It is built from the pieces ``segforge predict`` uses, in the same order: the run is found by
:func:`segforge.packaging.model_source.find_model_dir` (packages and nnU-Net folders through
:func:`segforge.packaging.model_source.resolve_model_source`), the folds are loaded by
:func:`~segforge.inference.model_loading.load_ensemble`, and cases go through one
:class:`~segforge.inference.predictor.CasePipeline` (preprocess, sliding window, export) with the
run's ``postprocessing.json``. ``predict_folder`` therefore writes the files ``segforge predict``
writes; ``predict_image`` / ``predict_array`` run the same pipeline on data in memory.

Threads: one Predictor may be shared; its calls are serialized by a lock (the sliding window
reuses buffers and the networks are not re-entrant), so two threads take turns rather than
predicting in parallel. For parallel prediction use one Predictor per process.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segforge.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import SimpleITK as sitk

PathLike = str | os.PathLike[str]


def _only_checkpoint(model_dir: Path) -> str:
    """The checkpoint a package holds (it exports one kind): ``best``, ``final`` or ``latest``."""
    kinds = sorted({p.stem.removeprefix("checkpoint_") for p in model_dir.glob("fold_*/checkpoint_*.pt")})
    return kinds[0] if len(kinds) == 1 else "final"


class Predictor:
    """A trained model (an ensemble of folds) ready to segment; see the module docstring.

    Prefer the constructors :meth:`from_run`, :meth:`from_package` and :meth:`from_nnunet`;
    ``Predictor(model_dir)`` takes a run folder (``<trainer>__<network>__<plans>``) or a fold folder.
    ``tta`` mirrors along the axes the model was trained to be mirrored on (``--no-tta`` off),
    ``precision``, ``device``, ``compile``, ``backend`` and ``reuse_constant_tiles`` are ``segforge
    predict``'s options (``backend`` defaults to eager ``torch`` here: ``auto`` weighs a backend's set-up
    against the run's case count, which a Predictor does not know in advance); ``postprocessing=False``
    ignores the run's ``postprocessing.json``.
    """

    def __init__(
        self,
        model_dir: PathLike,
        *,
        folds: Sequence[int | str] | None = None,
        checkpoint: str = "final",
        device: str = "auto",
        precision: str = "auto",
        tta: bool = True,
        step_size: float = 0.5,
        postprocessing: bool = True,
        compile: bool = False,
        backend: str = "torch",
        reuse_constant_tiles: bool = True,
    ) -> None:
        from segforge.hardware import resolve_device
        from segforge.inference.cascade import is_cascade
        from segforge.inference.model_loading import load_ensemble
        from segforge.inference.predictor import CasePipeline
        from segforge.inference.sliding_window import SlidingWindowSettings
        from segforge.plugins import get_registries
        from segforge.postprocessing.apply import prediction_hook

        registries = get_registries()
        self.model_dir = Path(model_dir)
        self.folds = [str(f) for f in folds] if folds is not None else None
        self.checkpoint = checkpoint
        networks, model = load_ensemble(self.model_dir, self.folds, checkpoint, registries)
        if is_cascade(model):
            raise UsageError(f"{model.configuration.name} is a cascade stage: the Python API predicts single stages",
                             hint="use `segforge predict` for cascades, or the 3d_lowres/3d_fullres model")  # fmt: skip
        self.model = model
        self.device = resolve_device(device)
        mirror_axes = model.mirror_axes if tta else None
        settings = SlidingWindowSettings(tuple(model.configuration.patch_size), step_size=step_size,
                                         mirror_axes=mirror_axes, precision=precision, compile=compile,
                                         backend="compiled" if compile else backend,
                                         reuse_constant_tiles=reuse_constant_tiles)  # fmt: skip
        self._pipeline = CasePipeline(networks, model, settings, self.device, registries=registries)
        self.image_io = self._pipeline.image_io
        self._pipeline.postprocess, self.postprocessing_note = prediction_hook(self.model_dir, self.image_io,
                                                                          disabled=not postprocessing)  # fmt: skip
        self._lock = threading.Lock()

    # -- constructors -----------------------------------------------------------------------
    @classmethod
    def from_run(
        cls,
        task: str | int,
        config: str = "3d_fullres",
        *,
        folds: Sequence[int | str] | None = None,
        checkpoint: str = "final",
        trainer: str | None = None,
        network: str | None = None,
        plans: str | None = None,
        **options: Any,
    ) -> Predictor:
        """The run of ``task`` in the results folder that ``segforge predict --task`` with these options uses."""
        from segforge.packaging.model_source import find_model_dir

        run_dir = find_model_dir(str(task), None, config, trainer, network, plans)
        return cls(run_dir, folds=folds, checkpoint=checkpoint, **options)

    @classmethod
    def from_package(
        cls, path: PathLike, *, folds: Sequence[int | str] | None = None, checkpoint: str | None = None,
        cache_dir: PathLike | None = None, **options: Any,
    ) -> Predictor:  # fmt: skip
        """A model package (``segforge export-model``): verified, plugin requirements checked, unpacked once.

        No results folder is needed: the package is unpacked under the user cache
        (``$SEGFORGE_CACHE``, ``~/.cache/segforge``) or ``cache_dir``. ``checkpoint`` defaults to
        the one the package holds.
        """
        from segforge.packaging.model_source import resolve_model_source

        if not Path(path).is_file():
            raise UsageError(f"model package {path} does not exist", hint="pass the .zip written by export-model")
        fold_names = [str(f) for f in folds] if folds is not None else None
        model_dir = resolve_model_source(path, folds=fold_names, checkpoint=checkpoint or "final", cache_dir=cache_dir)
        return cls(model_dir, folds=fold_names, checkpoint=checkpoint or _only_checkpoint(model_dir), **options)

    @classmethod
    def from_nnunet(
        cls, model_folder: PathLike, *, folds: Sequence[int | str] | None = None, checkpoint: str = "final",
        cache_dir: PathLike | None = None, **options: Any,
    ) -> Predictor:  # fmt: skip
        """An nnU-Net v2 model folder (plans.json, dataset.json, fold_N/checkpoint_*.pth), converted once."""
        from segforge.packaging.model_source import is_nnunet_model_folder, resolve_model_source

        if not is_nnunet_model_folder(Path(model_folder)):
            raise UsageError(f"{model_folder} is not an nnU-Net v2 model folder",
                             hint="pass the folder with plans.json, dataset.json, fold_N/checkpoint_*.pth")  # fmt: skip
        fold_names = [str(f) for f in folds] if folds is not None else None
        model_dir = resolve_model_source(model_folder, folds=fold_names, checkpoint=checkpoint, cache_dir=cache_dir)
        return cls(model_dir, folds=fold_names, checkpoint=checkpoint, **options)

    # -- what the model is ------------------------------------------------------------------
    @property
    def labels(self) -> dict[str, int]:
        """Label name -> value written in the segmentations."""
        return dict(self.model.plans.labels)

    @property
    def num_channels(self) -> int:
        """Image channels per case (files CASE_0000, CASE_0001, ... in a folder)."""
        from segforge.inference.cascade import image_channels

        return image_channels(self.model)

    # -- predicting -------------------------------------------------------------------------
    def predict_folder(
        self, input_folder: PathLike, output_folder: PathLike, *, save_probabilities: bool = False,
        skip_existing: bool = False, overlap: bool | None = None,
    ) -> list[Path]:  # fmt: skip
        """Segment every case of a folder (``CASE_0000.nii.gz`` ...) into ``output_folder``; the files written.

        The same files as ``segforge predict`` (``CASE.nii.gz``; with ``save_probabilities`` also
        ``CASE.npz`` + ``CASE.json``). ``skip_existing`` is ``--continue``.
        """
        from segforge.inference.folder_jobs import default_overlap, jobs_for_folder
        from segforge.inference.predictor import run_jobs

        use_overlap = default_overlap(self.device, overlap)
        jobs, _ = jobs_for_folder(Path(input_folder), Path(output_folder), self.model, self.image_io,
                                  skip_existing=skip_existing, overlap=use_overlap,
                                  save_probabilities=save_probabilities)  # fmt: skip
        with self._lock:
            self._pipeline.save_probabilities = save_probabilities
            try:
                results = run_jobs(self._pipeline, jobs, overlap=use_overlap)
            finally:
                self._pipeline.save_probabilities = False
        return [r.output for r in results]

    def _segment(self, data: np.ndarray, props: Any, case_id: str) -> np.ndarray:
        """Preprocess -> sliding window -> label map in the input's array shape (postprocessing applied)."""
        from segforge.inference.export import logits_to_segmentation

        pipe = self._pipeline
        if data.shape[0] != self.num_channels:
            raise UsageError(f"{case_id}: {data.shape[0]} channel(s) given, the model takes {self.num_channels}",
                             hint="pass one image (or array along the first axis) per channel")  # fmt: skip
        with self._lock:
            ident = pipe.preprocessor.data_identifiers[0]
            case = pipe.preprocessor.run_arrays(data, None, props, case_id, [ident])[ident]
            logits = pipe.predict(case)
            seg, _ = logits_to_segmentation(logits, case.props, pipe.plans, pipe.conf)
        return pipe.postprocess(seg) if pipe.postprocess is not None else seg

    def predict_image(self, image: sitk.Image | PathLike | Sequence[sitk.Image | PathLike]) -> sitk.Image:
        """Segment one case given as SimpleITK image(s) or file(s) (one per channel); a label image on its grid."""
        import numpy as np

        from segforge.io.image_io import _to_image, properties_of

        channels = list(image) if isinstance(image, (list, tuple)) else [image]
        if all(isinstance(c, (str, os.PathLike)) for c in channels):
            data, props = self.image_io.read_images([Path(c) for c in channels])
            name = Path(channels[0]).name
        else:
            import SimpleITK as sitk

            props = properties_of(channels[0])
            arrays = [sitk.GetArrayFromImage(c).reshape(props.shape).astype(np.float32) for c in channels]
            data, name = np.stack(arrays), "image"
        seg = self._segment(data, props, name)
        return _to_image(seg.reshape(props.shape), props, Path(name))

    def predict_array(self, array: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
        """Segment an array ``[C, *spatial]`` (or ``[*spatial]`` for one channel) with ``spacing`` per
        spatial axis in the same order (mm); returns the label map ``[*spatial]``.

        The array axes must be in the order SimpleITK's ``GetArrayFromImage`` gives (z, y, x), as
        the model was trained on; origin and direction are taken as zero and identity.
        """
        import numpy as np
        import SimpleITK as sitk

        from segforge.io.image_io import properties_of

        array = np.asarray(array)
        spacing = [float(s) for s in spacing]
        if array.ndim == len(spacing):
            array = array[None]
        if array.ndim != len(spacing) + 1 or len(spacing) not in (2, 3):
            raise UsageError(f"array of shape {array.shape} does not fit spacing {spacing}",
                             hint="pass [C, z, y, x] (or [z, y, x]) with three spacings, or 2D with two")  # fmt: skip
        reference = sitk.GetImageFromArray(np.zeros(array.shape[1:], dtype=np.uint8))
        reference.SetSpacing(spacing[::-1])
        props = properties_of(reference)
        data = array.astype(np.float32, copy=False).reshape((array.shape[0], *props.shape))
        return self._segment(data, props, "array").reshape(array.shape[1:])
