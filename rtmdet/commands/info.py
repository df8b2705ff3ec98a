"""``rtmdet info MODEL... [--size S] [--json]``: parameters and FLOPs per part, beside the official
and paper numbers."""
from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from rtmdet.bench.complexity import CONVENTION, PARTS, info_rows


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="+", metavar="MODEL", help="preset names or YAML configs")
    p.add_argument("--size", type=int, default=640, help="square input size (default 640)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    rows = info_rows(args.models, args.size)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title=f"RTMDet complexity at {args.size}×{args.size}", caption=CONVENTION)
    for col in ("model", "params (M)", "backbone", "neck", "head", "official", "Δ %", "paper",
                "FLOPs (G)", "official", "Δ %", "paper"):
        table.add_column(col, justify="right" if col != "model" else "left")
    for r in rows:
        p, f, o, pp = r["params"], r["flops"], r.get("official", {}), r.get("paper", {})
        table.add_row(
            r["model"], f"{p['total'] / 1e6:.3f}",
            *(f"{p.get(k, 0) / 1e6:.3f}" for k in PARTS),
            f"{o['params'] / 1e6:.3f}" if "params" in o else "—",
            f"{r['params_diff_pct']:+.3f}" if "params_diff_pct" in r else "—",
            f"{pp['params_M']:g}" if pp else "—",
            f"{f['total'] / 1e9:.3f}",
            f"{o['flops'] / 1e9:.3f}" if "flops" in o else "—",
            f"{r['flops_diff_pct']:+.3f}" if "flops_diff_pct" in r else "—",
            f"{pp['flops_G']:g}" if pp else "—")
    Console(width=160).print(table)
    return 0
