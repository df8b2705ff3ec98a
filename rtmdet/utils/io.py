"""Atomic file output: write to a temp file in the same folder, then ``os.replace``.

A job killed mid-write (Snakemake timeout, SLURM pre-emption, Ctrl-C) must never leave a
truncated checkpoint or JSON that a later rule would happily read.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, IO

import torch


def _atomic(path: str | Path, write: Callable[[IO[bytes]], None]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return _atomic(path, lambda f: f.write(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_or_print_json(obj: dict[str, Any], out: str | Path | None,
                        omit: tuple[str, ...] = ()) -> None:
    """The CLI convention for result dicts: written whole (atomically) to ``out`` when given,
    otherwise printed as one JSON line without the bulky ``omit`` keys (env, raw timings…)."""
    if out:
        atomic_write_json(out, obj)
        print(f"wrote {out}")
    else:
        print(json.dumps({k: v for k, v in obj.items() if k not in omit}))


def atomic_save_figure(fig: Any, path: str | Path, dpi: int = 100) -> Path:
    """Render a matplotlib figure to PNG atomically and close it."""
    import io as _io

    import matplotlib.pyplot as plt
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def atomic_torch_save(path: str | Path, obj: Any) -> Path:
    return _atomic(path, lambda f: torch.save(obj, f))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load one of our checkpoints; ``weights_only`` so a checkpoint can never execute code."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"checkpoint not found: {path}") from None
