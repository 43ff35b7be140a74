"""Training: nnU-Net v2's recipe as small overridable steps, checkpoints, resume and time budgets.

* :mod:`.api` - ``train(RunRequest)``, the Python API behind ``segforge train``
* :mod:`.run_setup` - task, plans (variants for ``--network``), data, fold and components
* :mod:`.trainer` - :class:`~segforge.training.trainer.DefaultTrainer`, the steps a plugin overrides
* :mod:`.loop` - the epoch loop, interruption and the final save
* :mod:`.params` / :mod:`.overrides` - the trainer's Params and ``--set key=value``
* :mod:`.schedule` - poly (and warm-up cosine) learning rates as functions of the iteration
* :mod:`.checkpoint` / :mod:`.rng` / :mod:`.state` - what a checkpoint holds (weights_only-safe)
* :mod:`.budget` / :mod:`.clock` / :mod:`.device` - ``--time-budget`` and CPU/GPU choices
* :mod:`.run_dir` / :mod:`.manifest` / :mod:`.run_log` / :mod:`.progress_plot` - the run folder
* :mod:`.signals` / :mod:`.pretrained` / :mod:`.pseudo_dice` - SIGINT/SIGTERM, init weights, EMA Dice

Importing this package (or the trainer class) does not import torch.
"""
