"""nnU-Net v2 model folders in segforge: safe checkpoint reading, plans and architecture mapping.

``segforge predict -m NNUNET_MODEL_FOLDER`` and ``segforge import-nnunet`` go through
:func:`to_model_directory` (called by :mod:`segforge.packaging.model_source`). Modules:
:mod:`.checkpoint` (weights-only loading with a numpy allow-list), :mod:`.plans` (plans.json and
dataset.json to segforge plans), :mod:`.architecture` (PlainConvUNet / ResidualEncoderUNet to the
builtin networks, weight names), :mod:`.model_directory` (the conversion). See docs/nnunet-models.md.
"""

from segforge.interop.nnunet.checkpoint import NnunetCheckpointError, load_nnunet_checkpoint
from segforge.interop.nnunet.model_directory import to_model_directory

__all__ = ["NnunetCheckpointError", "load_nnunet_checkpoint", "to_model_directory"]
