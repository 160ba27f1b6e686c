"""Fixtures shared by several test modules (each named for what it does; none is autouse)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture
def single_torch_thread() -> Iterator[None]:
    """One intra-op thread for the test: on a shared 2-core machine, two spinning OpenMP threads per
    process make small CPU kernels up to 20x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
