"""Publish the pipeline's tables: copy what the report rules wrote under ``runs/reports/`` to the
same relative paths under ``reports/``, each file atomically (temp file + rename).

Why a copy rather than writing ``reports/`` directly: ``reports/`` is committed, so on a fresh
clone its files exist and look up to date to Snakemake, and ``snakemake table_X`` would compute
nothing. The report rules therefore write into ``runs/reports/`` (never in git) and the publish
rules (``runs/reports/<f>`` → ``reports/<f>``) copy from there: a fresh clone has no
``runs/reports/``, so the report and every run it needs are built, and the copy replaces what git
checked out. Once built, a second invocation finds the copy newer than its source and does
nothing; a deleted ``reports/`` file (``dvc repro`` removes its outs first) is re-copied
without recomputing anything.

    python -m rtmdet.pipeline.publish --src runs/reports --dst reports reports/tables/k.md ...
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Sequence

from rtmdet.utils.errors import UserError
from rtmdet.utils.io import atomic_write_bytes, atomic_write_json

SRC = Path("runs/reports")       # where the report rules write (the pipeline's own folder)
DST = Path("reports")            # the committed, published copy


def source_of(target: str | Path, src: str | Path = SRC, dst: str | Path = DST) -> Path:
    """The file under ``src`` that ``target`` (a path under ``dst``) is published from."""
    target, dst = Path(target), Path(dst)
    try:
        rel = target.relative_to(dst)
    except ValueError:
        raise UserError(f"{target}: not under the publish folder {dst}/") from None
    return Path(src) / rel


def publish(targets: Sequence[str | Path], src: str | Path = SRC,
            dst: str | Path = DST) -> list[Path]:
    """Copy each target's source over it; all sources are checked before anything is written,
    so a missing file leaves ``dst`` as it was."""
    pairs = [(source_of(t, src, dst), Path(t)) for t in targets]
    missing = [str(s) for s, _ in pairs if not s.is_file()]
    if missing:
        raise UserError(f"{missing[0]}: not found (run the report rule first)"
                        + (f" (+{len(missing) - 1} more)" if len(missing) > 1 else ""))
    return [atomic_write_bytes(t, s.read_bytes()) for s, t in pairs]


def write_manifest(path: str | Path, files: Sequence[Path]) -> Path:
    """``{"files": {path: sha256}}`` of what was just published."""
    return atomic_write_json(path, {"files": {str(f): hashlib.sha256(f.read_bytes()).hexdigest()
                                              for f in files}})


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rtmdet.pipeline.publish",
                                description="copy runs/reports/<f> to reports/<f>, atomically")
    p.add_argument("--src", default=str(SRC), help="the report rules' folder (runs/reports)")
    p.add_argument("--dst", default=str(DST), help="the published folder (reports)")
    p.add_argument("--manifest", help="write the list of published files and their sha256 here")
    p.add_argument("targets", nargs="+", help="files to publish, as paths under --dst")
    a = p.parse_args(argv)
    try:
        files = publish(a.targets, a.src, a.dst)
        if a.manifest:
            write_manifest(a.manifest, files)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
