"""Where the nnU-Net v2 fixture lives (made by ``scripts/make_nnunet_fixture.py`` with real nnU-Net v2.8.1).

``data/nnunet_hippocampus/<plans>/model/`` is what ``nnUNetv2_predict_from_modelfolder -m`` takes
(plans.json, dataset.json, fold_0/checkpoint_final.pth; features 8-16-32-64, ResEnc 4-8-16-32, a few hundred
training iterations), ``reference/`` nnU-Net's output with ``--save_probabilities`` for the two held-out
cases below (their images are read from the shared data).
"""

from __future__ import annotations

from pathlib import Path

FIXTURE = Path(__file__).resolve().parent / "data" / "nnunet_hippocampus"
PLAIN = FIXTURE / "nnUNetPlans"
RESENC = FIXTURE / "nnUNetResEncUNetMPlans"
REFERENCE_CASES = ("hippocampus_393", "hippocampus_394")
