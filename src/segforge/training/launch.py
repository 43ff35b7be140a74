"""``segforge train --num-gpus G``: the same command, re-launched under torchrun on this node.

The option is a shortcut for ``python -m torch.distributed.run --standalone --nproc_per_node G
-m segforge train ...`` (torchrun's own module, so segforge adds no launcher of its own): the
arguments are passed on unchanged except ``--num-gpus`` itself, so the G workers run exactly
the command the user typed. On the CPU (``--device cpu``) G means G processes on the gloo
backend, which is how the tests and a laptop exercise the distributed code paths.

This module imports no torch at module level (the CLI's start-up must stay fast).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

from segforge.errors import UsageError

OPTION = "--num-gpus"


def strip_option(argv: Sequence[str], option: str = OPTION) -> list[str]:
    """``argv`` without ``option VALUE`` / ``option=VALUE`` (every occurrence)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(option + "="):
            out.append(arg)
    return out


def torchrun_command(num_processes: int, segforge_args: Sequence[str]) -> list[str]:
    """The command that runs ``segforge SEGFORGE_ARGS`` as ``num_processes`` ranks on this node."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(num_processes),
        "-m",
        "segforge",
        *segforge_args,
    ]


def check_launch(num_processes: int, device: str) -> None:
    """Refuse what cannot work: nested launches, fewer GPUs than asked for, G < 1."""
    if num_processes < 1:
        raise UsageError(f"{OPTION} {num_processes}: must be at least 1", hint=f"e.g. {OPTION} 2")
    if "WORLD_SIZE" in os.environ:
        raise UsageError(
            f"{OPTION} inside a torchrun job (WORLD_SIZE={os.environ['WORLD_SIZE']} is set)",
            hint=f"drop {OPTION} when launching with torchrun yourself",
        )
    if device == "cpu":
        return
    import torch

    found = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if found < num_processes:
        raise UsageError(
            f"{OPTION} {num_processes}: torch sees {found} GPU(s) on this node",
            hint=f"use {OPTION} {found} or fewer; for several CPU processes (gloo) add --device cpu"
            if found
            else f"for {num_processes} CPU processes (gloo) add --device cpu",
        )


def relaunch(num_processes: int, device: str, segforge_args: Sequence[str], replace_process: bool) -> int:
    """Run ``segforge SEGFORGE_ARGS`` under torchrun; returns its exit code.

    ``replace_process`` (the ``segforge`` program itself) execs torchrun in place of this
    process, so signals (Ctrl-C, SIGTERM from a scheduler) reach it directly; otherwise
    (``main()`` called from Python) torchrun runs as a child and its exit code is returned.
    """
    check_launch(num_processes, device)
    command = torchrun_command(num_processes, segforge_args)
    if replace_process:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(command[0], command)
    return subprocess.call(command)
