"""What Snakemake's ``onsuccess`` prints: where the tables of this invocation are, and their
headline rows (per variant the paper's AP, ours with its interval, the paired delta and the
verdict), so a user sees the result without opening a file.

Only tables published during this invocation (modified at or after ``since``) are listed: a
``table_kernel_size`` run prints one table, not all of ``reports/``.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

from .publish import DST


def _num(x: str, fmt: str = "{:.1f}") -> str:
    try:
        return fmt.format(float(x))
    except ValueError:
        return x or "-"


def ablation_rows(csv_path: Path) -> list[str]:
    """One line per variant of an ablation table's CSV (``rtmdet report table``)."""
    rows = list(csv.DictReader(csv_path.open(newline="")))
    width = max([len(r["variant"]) for r in rows] + [7])
    out = [f"  {'variant':<{width}}  paper  ours AP [95 % CI]     delta [95 % CI]       verdict"]
    def with_ci(value: str, low: str, high: str, fmt: str) -> str:
        """``v [low, high]``; one seed has no interval: ``v``."""
        return _num(value, fmt) + (f" [{_num(low, fmt)}, {_num(high, fmt)}]" if low else "")

    for r in rows:
        ours = (with_ci(r["ours_AP_mean"], r["ours_AP_ci_low"], r["ours_AP_ci_high"], "{:.1f}")
                if r["ours_AP_mean"] else "not run")
        delta = (with_ci(r["ours_delta"], r["ours_delta_ci_low"], r["ours_delta_ci_high"],
                         "{:+.1f}") if r.get("ours_delta") else "")
        out.append(f"  {r['variant']:<{width}}  {_num(r['paper_AP']):>5}  {ours:<20}  "
                   f"{delta:<20}  {r.get('verdict', '')}".rstrip())
    return out


def markdown_rows(md_path: Path) -> list[str]:
    """The first markdown table of a file (timing tables: their columns are their own)."""
    lines = md_path.read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
    if start is None:
        return []
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        if not set(line) <= set("|-: "):          # leave out the |---| separator
            table.append("  " + line)
    return table


def headline(table: str, root: Path = DST) -> list[str]:
    """Path and headline rows of one published table."""
    md, csv_path = root / "tables" / f"{table}.md", root / "tables" / f"{table}.csv"
    header = csv_path.read_text().split("\n", 1)[0].split(",") if csv_path.exists() else []
    rows = ablation_rows(csv_path) if "ours_AP_mean" in header else markdown_rows(md)
    return [f"{md}:", *rows]


def summary(tables: Sequence[str], since: float, root: Path = DST) -> str:
    """The ``onsuccess`` text: the tables (re)published since ``since`` (epoch seconds)."""
    def new(path: Path) -> bool:
        return path.exists() and path.stat().st_mtime >= since

    fresh = [t for t in tables if new(root / "tables" / f"{t}.md")]
    index = root / "README.md"
    if not fresh:
        return f"Index written: {index}" if new(index) else ""
    lines = [f"Tables written ({len(fresh)}); the index is {index}:"]
    for t in fresh:
        lines += headline(t, root)
    return "\n".join(lines)
