"""Preprocessed-case storage, dataset loading and augmentation for training."""
