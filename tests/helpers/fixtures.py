"""The official implementation's reference tensors: where they are and how a test loads them."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]


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
