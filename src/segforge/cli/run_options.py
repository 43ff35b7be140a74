"""Options that pick a trained run, shared by the commands that read one (predict, postprocess).

One definition keeps their names, aliases and defaults identical, so a run found by
``segforge predict`` is the run ``segforge postprocess determine`` finds with the same words.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

TrainerOption = Annotated[
    Optional[str], typer.Option("--trainer", "-tr", help="Trainer (default: the network's recommended one).")
]
NetworkOption = Annotated[
    Optional[str], typer.Option("--network", help="Network (default: generic_unet, else the only trained one).")
]
PlansOption = Annotated[Optional[str], typer.Option("--plans", help="Plans name (default: the network's).")]
