"""``auto`` | ``cpu`` | ``cuda[:N]`` → the device string torch gets, in one place for the
trainer and every command (config ``train.device``, ``--device``)."""
from __future__ import annotations

import torch


def resolve_device(name: str | None) -> str:
    """``auto`` (or nothing) → ``cuda`` when a GPU is visible, else ``cpu``; anything else
    unchanged (``config/checks.py`` has already refused what torch would not accept)."""
    if name in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name
