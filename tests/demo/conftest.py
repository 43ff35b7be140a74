"""Demo tests train in-process: put back the torch settings a trainer changes for the process."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _restore_torch_globals():
    import torch

    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)
