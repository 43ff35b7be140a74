"""Running models trained by other frameworks with segforge's pipeline (nnU-Net v2: :mod:`.nnunet`)."""
