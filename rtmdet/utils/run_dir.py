"""Run folders that never mix two runs: when the user names no folder, each ``rtmdet train``
gets a fresh one — ``runs/<name>``, then ``runs/<name>2``, ``runs/<name>3``, … (the ultralytics
convention) — so a second run of the same config can never overwrite the first one's weights or
leave its old evaluation files beside new weights.
"""
from __future__ import annotations

import re
from pathlib import Path


def _is_used(folder: Path) -> bool:
    return folder.exists() and any(folder.iterdir())


def numbered(base: str | Path) -> list[Path]:
    """``base``, ``base2``, ``base3``, … that exist, in number order."""
    base = Path(base)
    pat = re.compile(re.escape(base.name) + r"(\d*)$")
    found = []
    if base.parent.exists():
        for p in base.parent.iterdir():
            m = pat.match(p.name)
            if p.is_dir() and m and m.group(1) != "1" and not m.group(1).startswith("0"):
                found.append((int(m.group(1) or 1), p))
    return [p for _, p in sorted(found)]


def new_run_dir(base: str | Path) -> Path:
    """``base`` when it is missing or empty, else the first unused ``base<N>`` (N ≥ 2)."""
    base = Path(base)
    if not _is_used(base):
        return base
    n = 2
    while _is_used(base.with_name(f"{base.name}{n}")):
        n += 1
    return base.with_name(f"{base.name}{n}")


def latest_run_dir(base: str | Path, marker: str = "last.pt") -> Path:
    """The highest-numbered ``base<N>`` holding ``marker`` (for ``--resume`` without a named
    folder); ``base`` itself when none does."""
    with_marker = [p for p in numbered(base) if (p / marker).exists()]
    return with_marker[-1] if with_marker else Path(base)
