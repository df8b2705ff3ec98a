#!/usr/bin/env bash
# Every CPU speed row of issue 10 in one session on one machine, then one summary table
# (summary.md), all into one new folder benchmarks/results/<date>_<cpu>/run_<HHMM>/ (override
# with OUT=...): one set of results per machine, date and run, never overwritten. Run it on an
# otherwise idle machine: the 2-thread OpenMP teams slow down several-fold when other jobs share the cores (each JSON keeps the load).
#
#   bash benchmarks/run_cpu.sh            # ~15 min on 2 cores
#   PYTHON=python bash benchmarks/run_cpu.sh
set -euo pipefail
PYTHON=${PYTHON:-.venv/bin/python}
CPU=$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo | tr -cs 'A-Za-z0-9' '-' | cut -c1-24)
OUT=${OUT:-benchmarks/results/$(date -u +%F)_${CPU%-}-$(nproc)cpu/run_$(date -u +%H%M)}
mkdir -p "$OUT"
echo "== $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
"$PYTHON" benchmarks/forward_latency.py --models rtmdet-tiny rtmdet-s --runs 60 --block 5 --out "$OUT/forward_latency.json"
"$PYTHON" benchmarks/train_step.py --models rtmdet-tiny rtmdet-s --sizes 320 640 --steps 5 --warmup 2 --out "$OUT/train_step.json"
"$PYTHON" benchmarks/data_throughput.py --n 200 --repeats 2 --out "$OUT/data_throughput.json"
"$PYTHON" benchmarks/assigner_memory.py --gts 500 --out "$OUT/assigner_memory.json"
"$PYTHON" benchmarks/vs_official.py --out "$OUT/vs_official.json"   # creates the oracle venv once (~1 min)
"$PYTHON" benchmarks/summary.py --results "$OUT" --out "$OUT/summary.md"
echo "== $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
