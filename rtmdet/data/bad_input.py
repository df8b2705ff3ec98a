"""One policy for bad input: raise a one-line error, or skip it, count it and log it.

Real datasets contain a few broken files and annotations; a multi-day run must not die on one,
yet silently dropping data hides real problems. So every skip is counted per reason, the first
few are logged with the file (and line) that caused them, and the counts can be reported.
"""
from __future__ import annotations

import logging
from collections import Counter

log = logging.getLogger("rtmdet.data")


class DataError(ValueError):
    """Bad input in ``error`` mode; the message names the file (and line)."""


class BadInput:
    """Apply ``mode`` ("skip" or "error") to problems, counting skips by reason."""

    def __init__(self, mode: str = "skip", max_logged: int = 20) -> None:
        if mode not in ("skip", "error"):
            raise ValueError(f"bad-input mode must be 'skip' or 'error', got {mode!r}")
        self.mode = mode
        self.max_logged = max_logged
        self.counts: Counter[str] = Counter()

    def __call__(self, reason: str, where: str, detail: str = "") -> None:
        """Report one problem: raises in error mode, otherwise counts and (rate-limited) logs."""
        msg = f"{where}: {reason}" + (f" ({detail})" if detail else "")
        if self.mode == "error":
            raise DataError(msg)
        self.counts[reason] += 1
        total = sum(self.counts.values())
        if total <= self.max_logged:
            log.warning("skipped: %s", msg)
        elif total == self.max_logged + 1:
            log.warning("further skips are counted but not logged")

    def since(self, seen: Counter[str]) -> dict[str, int]:
        """Counts added since ``seen`` (which is brought up to date): what a dataloader worker
        reports back with each item, as its own copy of this object is lost with the worker."""
        new = {r: n - seen[r] for r, n in self.counts.items() if n > seen[r]}
        seen.update(new)
        return new

    def summary(self) -> str:
        return summarize(self.counts)


def summarize(counts: Counter[str] | dict[str, int]) -> str:
    """``skipped 2 × truncated image, 1 × non-finite bbox coordinate`` (or ``no bad input``)."""
    if not any(counts.values()):
        return "no bad input"
    return "skipped " + ", ".join(f"{n} × {r}" for r, n in sorted(counts.items()) if n)
