"""Paired random streams: seed k of every variant of an ablation starts from the same numbers
wherever the variant allows it.

A variant that changes one component (the backbone's kernel size, the head's sharing) would
otherwise shift the global RNG for everything initialised after it, so the neck and head of k3
and k5 would start from unrelated draws and the per-seed difference would carry initialisation
noise the ablation did not cause. Each component therefore draws from its own stream, derived
from ``(seed, component name)``; data order and augmentation already come from
``(seed, epoch, worker)`` generators of their own (:mod:`rtmdet.data.loader`).
"""
from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterator

import torch


def component_seed(seed: int, name: str) -> int:
    """A stable 63-bit seed for ``name`` under run seed ``seed`` (the same on every machine and
    Python version: no ``hash()``, which is salted per process)."""
    return (int(seed) * 1_000_003 + zlib.crc32(name.encode())) % (2 ** 63)


@contextlib.contextmanager
def seeded(seed: int | None, name: str) -> Iterator[None]:
    """Run the block with torch's CPU RNG seeded for ``name``; the caller's RNG state is
    restored afterwards, so what runs next does not depend on how much the block drew.
    ``seed=None``: the block draws from the global RNG as it stands (no pairing)."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(component_seed(seed, name))
        yield
