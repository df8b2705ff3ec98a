"""``rtmdet report table|timing|index``: an ablation's table and figures, a timing table, and
reports/README.md with the speed-accuracy figure (Snakemake's report rules call these)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rtmdet.pipeline.dvc import load_oneoff
from rtmdet.pipeline.report import DATA_NOTES, link_mlflow, write_index, write_table
from rtmdet.pipeline.report_stats import SeedCollisionError
from rtmdet.pipeline.report_timing import TIMING_TABLES, write_timing_table
from rtmdet.pipeline.spec import load_experiment


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="report_command", required=True, metavar="WHAT")
    t = sub.add_parser("table", help="one ablation's table (md/csv/json) and figures")
    t.add_argument("experiment", help="experiments/<name>.yaml")
    t.add_argument("--runs", required=True, help="runs/<name> (variant/seed*/eval.json, ...)")
    t.add_argument("--out", default="reports", help="reports folder (default reports)")
    t.add_argument("--scale", required=True, help="scale name stated on the table")
    t.add_argument("--scale-note", default="", help="one line describing the scale")
    t.add_argument("--data", choices=list(DATA_NOTES), required=True,
                   help="the data set the runs used, stated on the table")
    t.add_argument("--mlflow", action="store_true", help="nest the runs under a parent run")
    t.add_argument("--oneoff", default=None, metavar="PARAMS_YAML",
                   help="add the one-off variant of this params.yaml (dvc exp run -S oneoff...)")
    t.add_argument("--paper-latency", default=None, metavar="JSON",
                   help="`rtmdet bench paper-latency` result: latency ratios at paper scale")
    m = sub.add_parser("timing", help="a timing table (md/csv/json) from `rtmdet bench data`")
    m.add_argument("name", choices=list(TIMING_TABLES), help="timing table to render")
    m.add_argument("--timing", required=True, help="the `rtmdet bench data` JSON")
    m.add_argument("--paper", default=None, help="paper CSV (default: paper/<the table's CSV>)")
    m.add_argument("--out", default="reports", help="reports folder (default reports)")
    m.add_argument("--scale", required=True, help="scale name stated on the table")
    i = sub.add_parser("index", help="reports/README.md and the speed-accuracy figure")
    i.add_argument("tables", nargs="+", help="reports/tables/<name>.json files")
    i.add_argument("--out", default="reports", help="reports folder (default reports)")


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if args.report_command == "table":
        exp = load_experiment(args.experiment)
        if args.oneoff:
            exp = load_oneoff(args.oneoff).apply({exp.name: exp})[exp.name]
        try:
            summary = write_table(exp, Path(args.runs), out, args.scale, args.scale_note,
                                  args.data, args.paper_latency)
        except SeedCollisionError as e:     # the report step must fail, loudly, in one line
            print(f"error: {e}", file=sys.stderr)
            return 3
        v = summary["evidence"]["verdicts"]
        print(f"wrote {out}/tables/{exp.name}.{{md,csv,json}}, {out}/metrics/{exp.name}.json and "
              f"figures (agrees {v['agrees']}, contradicts {v['contradicts']}, "
              f"unresolved {v['unresolved']})")
        if args.mlflow:
            print(f"mlflow parent run {link_mlflow(exp, summary, out / 'tables' / f'{exp.name}.md')}")
    elif args.report_command == "timing":
        paper = args.paper or f"paper/{TIMING_TABLES[args.name]}"
        s = write_timing_table(args.name, args.timing, paper, out, args.scale)
        speed = ", ".join(f"{t} {v['paper_speedup']:.2f}x / {v['ours_speedup']:.2f}x"
                          for t, v in s["speedup"].items())
        print(f"wrote {out}/tables/{args.name}.{{md,csv,json}} (cache speed-up paper / ours: "
              f"{speed})")
    else:
        summaries = [json.loads(Path(t).read_text()) for t in args.tables]
        print(f"wrote {write_index(summaries, out)}")
    return 0
