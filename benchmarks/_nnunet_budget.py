"""nnU-Net v2's stock trainer stopped at a wall-clock budget (for the benchmarks that compare budgets).

nnU-Net has no time budget: its ``nnUNetTrainer`` runs 1000 epochs of 250 iterations with a
poly learning rate planned for all of them. The fair comparison with ``segforge train
--time-budget`` is what a user gets by stopping it when the time is up: the driver below is
``nnUNetv2_train`` unrolled (same trainer, same data loaders, same epoch hooks) with a check of
the clock after every iteration; the budget counts from the start of its process, as segforge's
does. At the stop it finishes the epoch's bookkeeping (two validation batches instead of 50) and
``on_train_end`` writes ``checkpoint_final.pth``; with ``validate`` it then runs nnU-Net's own
``perform_actual_validation`` (its ``summary.json`` gives the Dice), outside the budget.

Runs inside the peer venv (``nox -s peers``); :func:`run_nnunet_budget` starts it there.
"""

from __future__ import annotations

import json
from pathlib import Path

from _logged import run

DRIVER = r"""
import json, os, sys, time
T0 = time.monotonic()
budget, dataset, configuration, fold, out, validate = sys.argv[1:7]
budget, fold = float(budget), (fold if fold == "all" else int(fold))
import torch
torch.set_num_threads(os.cpu_count())
from nnunetv2.run.run_training import get_trainer_from_args
cpu = torch.device("cpu")
trainer = get_trainer_from_args(dataset, configuration, fold, "nnUNetTrainer", "nnUNetPlans", device=cpu)
trainer.on_train_start()
times, iterations, done = [], 0, False
while not done and trainer.current_epoch < trainer.num_epochs:
    trainer.on_epoch_start(); trainer.on_train_epoch_start()
    outputs = []
    for _ in range(trainer.num_iterations_per_epoch):
        t = time.monotonic()
        outputs.append(trainer.train_step(next(trainer.dataloader_train)))
        times.append(time.monotonic() - t); iterations += 1
        if time.monotonic() - T0 >= budget:
            done = True; break
    trainer.on_train_epoch_end(outputs)
    with torch.no_grad():
        trainer.on_validation_epoch_start()
        n_val = 2 if done else trainer.num_val_iterations_per_epoch
        vals = [trainer.validation_step(next(trainer.dataloader_val)) for _ in range(n_val)]
        trainer.on_validation_epoch_end(vals)
    trainer.on_epoch_end()
lr = trainer.optimizer.param_groups[0]["lr"]
train_wall = time.monotonic() - T0
trainer.on_train_end()
result = {"iterations": iterations, "s_per_iteration": sum(times[1:]) / max(len(times) - 1, 1), "final_lr": lr,
          "train_wall_s": train_wall, "patch_size": list(trainer.configuration_manager.patch_size),
          "batch_size": trainer.configuration_manager.batch_size, "output_folder": trainer.output_folder}
if validate == "1":
    trainer.perform_actual_validation(False)
    summary = json.load(open(os.path.join(trainer.output_folder, "validation", "summary.json")))
    result["dice"] = {k: v["Dice"] for k, v in summary["mean"].items()}
json.dump(result, open(out, "w"))
"""


def run_nnunet_budget(
    python: Path,
    env: dict[str, str],
    *,
    budget_s: float,
    dataset: str,
    configuration: str,
    fold: str,
    out: Path,
    log: Path,
    validate: bool,
) -> dict:
    """Train with nnU-Net's stock trainer until ``budget_s`` seconds are spent; the driver's result dict.

    ``env`` carries nnU-Net's ``nnUNet_raw``/``nnUNet_preprocessed``/``nnUNet_results``.
    """
    cmd = [str(python), "-c", DRIVER, str(budget_s), dataset, configuration, str(fold), str(out),
           "1" if validate else "0"]  # fmt: skip
    run(cmd, env, log, f"nnU-Net budget driver {budget_s:.0f} s {dataset} {configuration} fold {fold}")
    return json.loads(out.read_text())
