"""Atomic writes respect the umask: files others on a shared server must read (reports,
checkpoints) get the mode ``open()`` would give them, not mkstemp's 0600."""
from __future__ import annotations

import os
import stat

import pytest
import torch

from rtmdet.utils.io import atomic_torch_save, atomic_write_json, atomic_write_text


@pytest.fixture
def umask():
    def set_mask(mask: int) -> None:
        os.umask(mask)
    old = os.umask(0o022)
    yield set_mask
    os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_follow_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    paths = [atomic_write_text(tmp_path / "a.txt", "x"),
             atomic_write_json(tmp_path / "sub" / "b.json", {"a": 1}),
             atomic_torch_save(tmp_path / "c.pt", {"w": torch.ones(1)})]
    for p in paths:
        assert stat.S_IMODE(p.stat().st_mode) == mode, p
    assert not [p for p in tmp_path.rglob(".*.tmp")]         # no temp file left behind


def test_replacing_a_file_keeps_no_temp_and_new_content(tmp_path, umask):
    umask(0o022)
    atomic_write_text(tmp_path / "a.txt", "old")
    atomic_write_text(tmp_path / "a.txt", "new")
    assert (tmp_path / "a.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
