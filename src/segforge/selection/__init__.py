"""Best-configuration search (``segforge find-best-config``) and the inference instructions it writes.

It compares trained configurations, their ensembles and postprocessing by cross-validation
scores, so it sits above evaluation, ensembling and postprocessing, which it uses; evaluation
itself stays low enough for training's validation to use it.
"""
