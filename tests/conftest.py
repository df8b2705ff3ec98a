"""Shared test helpers: locating the official reference tensors, deterministic torch."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def fixtures_dir() -> Path:
    """``$RTMDET_FIXTURES`` or ``../shared/fixtures`` beside the checkout (as CI lays it)."""
    env = os.environ.get("RTMDET_FIXTURES")
    return Path(env) if env else REPO.parent / "shared" / "fixtures"


def load_fixture(name: str) -> dict:
    path = fixtures_dir() / name
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"reference fixture missing in CI: {path}")
        pytest.skip(f"reference fixture not found: {path}")
    return torch.load(path, map_location="cpu", weights_only=True)


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
