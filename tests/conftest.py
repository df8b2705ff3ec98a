"""Shared pytest fixtures: deterministic torch, one-thread comparisons (helpers: tests/helpers/)."""
from __future__ import annotations

import os

import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield


@pytest.fixture
def single_thread():
    """One torch thread for the test (and back after): comparisons of two runtimes or two
    layouts stay reproducible, and a loaded 2-core machine does not stall OpenMP."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
