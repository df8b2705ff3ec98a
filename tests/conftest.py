"""Shared pytest fixtures: deterministic torch, one-thread comparisons (helpers: tests/helpers/)."""
from __future__ import annotations

import os

import pytest
import torch


def _threads() -> int:
    """Torch threads per test process: with pytest-xdist workers sharing the cores, each gets
    its share (more threads than cores stalls OpenMP on a loaded 2-core machine)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    return max(1, min(2, (os.cpu_count() or 1) // workers))


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    torch.set_num_threads(_threads())
    yield


@pytest.fixture
def single_thread():
    """One torch thread for the test (and back after): comparisons of two runtimes or two
    layouts stay reproducible, and a loaded 2-core machine does not stall OpenMP."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
