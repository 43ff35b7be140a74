"""Inference: tiling, the Gaussian importance map, sliding-window prediction, mirroring, export.

Import the pieces from their modules (``segforge.inference.sliding_window`` etc.); this package
imports nothing heavy so the CLI stays fast.
"""
