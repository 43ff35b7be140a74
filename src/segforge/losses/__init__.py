"""Losses for segmentation training, as nnU-Net v2 computes them.

* :mod:`.dice` - soft Dice (nnU-Net's memory-efficient variant) and hard TP/FP/FN counts
* :mod:`.cross_entropy` - cross-entropy for ``[B, 1, *spatial]`` integer targets
* :mod:`.compound` - Dice + CE (nnU-Net's ``DC_and_CE_loss``)
* :mod:`.deep_supervision` - the weighted sum over deep-supervision outputs
* :mod:`.components` - the registered loss components (``dc_ce``, ``dice``, ``ce``,
  ``deep_supervision``): a name, a version, a pydantic ``Params`` and ``build(params, context)``

Importing this package does not import torch; the modules above (except ``components``) do.
"""
