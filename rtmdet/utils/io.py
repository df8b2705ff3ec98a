"""Atomic file output: write to a temp file in the same folder, then ``os.replace``.

A job killed mid-write (Snakemake timeout, SLURM pre-emption, Ctrl-C) must never leave a
truncated checkpoint or JSON that a later rule would happily read.

The temp file is created with mode 0666 filtered by the process umask, like ``open()`` would
(``tempfile.mkstemp`` forces 0600, which left every report and checkpoint unreadable to the
colleagues sharing a server).
"""
from __future__ import annotations

import csv
import glob
import io
import json
import os
import secrets
import socket
import time
from pathlib import Path
from typing import Any, Callable, IO

import torch

from .checkpoint_file import load_checkpoint  # noqa: F401 - its historical home


ORPHAN_AGE_S = 3600.0       # a temp file of another host (or unnamed owner) is stale after this


def _owner_tag() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def remove_orphans(path: Path) -> int:
    """Delete temp files an interrupted write to ``path`` left (a kill mid-checkpoint leaves an
    18-36 MB ``.last.pt.*.tmp`` otherwise, forever). A temp file names its writer
    (``.NAME.HOST-PID.*.tmp``): it is removed when that process is gone from this host, or when
    it is older than :data:`ORPHAN_AGE_S` (other hosts, older names); a live writer's is kept."""
    removed, host = 0, socket.gethostname()
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        owner = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        h, _, pid = owner.rpartition("-")
        try:
            if h == host and pid.isdigit():
                if _alive(int(pid)):
                    continue
            elif time.time() - tmp.stat().st_mtime < ORPHAN_AGE_S:
                continue
            tmp.unlink()
            removed += 1
        except FileNotFoundError:
            continue
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _create_temp(path: Path) -> tuple[int, str]:
    """A new, exclusively created temp file beside ``path`` (``.NAME.HOST-PID.RANDOM.tmp``)
    with default permissions (0666 & ~umask)."""
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{_owner_tag()}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{path.parent}: no free temp file name for {path.name}")


def _atomic(path: str | Path, write: Callable[[IO[bytes]], None]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphans(path)
    fd, tmp = _create_temp(path)
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


def csv_text(rows: list[dict[str, Any]], fields: list[str] | tuple[str, ...]) -> str:
    """CSV text with a header row, ``\n`` line ends and ``None`` as an empty cell: every table
    and metrics file we write goes through here."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if r.get(k) is None else r[k] for k in fields})
    return buf.getvalue()


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend. Imported on first use (lazy: ~0.5 s that
    only the commands drawing figures should pay, and no display is ever needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def atomic_save_figure(fig: Any, path: str | Path, dpi: int = 100) -> Path:
    """Render a matplotlib figure to PNG atomically and close it."""
    plt = pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def atomic_torch_save(path: str | Path, obj: Any) -> Path:
    return _atomic(path, lambda f: torch.save(obj, f))
