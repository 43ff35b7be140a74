"""Applying a ``postprocessing.json`` to segmentation files: one file, a folder, or in ``predict``.

``segforge predict`` looks for the decision in the model's run folder (or the run folder of the
fold folder given with ``-m``) and applies the decided rules to each label map before it is written
(probability files are left as predicted, as in nnU-Net).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from segforge.config.jsonio import load_model
from segforge.errors import UsageError
from segforge.postprocessing.crossval import run_folder_of
from segforge.postprocessing.decision import POSTPROCESSING_JSON, PostprocessingDecision, apply_postprocessing

_DETERMINE_HINT = "re-create it with `segforge postprocess determine -m RUN_FOLDER`"


def load_decision(path: Path) -> PostprocessingDecision:
    """Read a ``postprocessing.json``; an invalid one is a one-line ConfigError naming the file."""
    return load_model(path, PostprocessingDecision, hint=_DETERMINE_HINT)


def find_decision(model_dir: Path) -> Path | None:
    """``<run>/postprocessing.json`` for a run folder or one of its fold folders, if it exists."""
    path = run_folder_of(Path(model_dir)) / POSTPROCESSING_JSON
    return path if path.is_file() else None


def apply_to_file(source: Path, target: Path, decision: PostprocessingDecision, image_io: Any) -> None:
    """Read ``source``, apply the rules, write ``target`` (atomically; may be ``source`` itself)."""
    seg, props = image_io.read_seg(source)
    image_io.write_seg(apply_postprocessing(seg[0], decision), target, props)


def apply_to_folder(
    input_folder: Path, output_folder: Path, decision: PostprocessingDecision, image_io: Any
) -> list[Path]:
    """Postprocess every segmentation file of ``input_folder`` into ``output_folder`` (same names)."""
    input_folder, output_folder = Path(input_folder), Path(output_folder)
    if not input_folder.is_dir():
        raise UsageError(f"input folder {input_folder} does not exist", hint="pass the folder of segmentations")
    endings = image_io.file_endings
    files = sorted(p for p in input_folder.iterdir() if p.is_file() and not p.name.startswith(".")
                   and _has_ending(p.name, endings))  # fmt: skip
    if not files:
        raise UsageError(f"no segmentations ({', '.join(endings)}) in {input_folder}",
                         hint="pass the folder written by segforge predict")  # fmt: skip
    written = []
    for file in files:
        apply_to_file(file, output_folder / file.name, decision, image_io)
        written.append(output_folder / file.name)
    return written


def _has_ending(name: str, endings: tuple[str, ...]) -> bool:
    return any(name.endswith(e) and len(name) > len(e) for e in endings)


def prediction_hook(
    model_dir: Path, image_io: Any, *, disabled: bool = False
) -> tuple[Callable[[np.ndarray], np.ndarray] | None, str]:
    """What ``predict`` applies after exporting each case, and a line saying so.

    Returns ``(None, message)`` when there is nothing to apply (no decision, disabled, or a
    decision whose rules are all off).
    """
    path = find_decision(model_dir)
    if path is None:
        return None, "postprocessing: none determined for this model"
    if disabled:
        return None, f"postprocessing: {path} ignored (--disable-postprocessing)"
    decision = load_decision(path)
    if not decision.foreground_lcc and not decision.classes_applied():
        return None, f"postprocessing: {decision.describe()} ({path})"

    def hook(seg: np.ndarray) -> np.ndarray:
        return apply_postprocessing(seg, decision)

    return hook, f"postprocessing: {decision.describe()} ({path})"
