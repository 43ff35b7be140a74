"""Preprocessing: cropping, resampling, normalization and the case writer."""
