#!/usr/bin/env bash
# Every CPU speed row of issue 10 in one session on one machine, then one summary table
# (benchmarks/results/summary.md). Run it on an otherwise idle machine: the 2-thread OpenMP
# teams slow down several-fold when other jobs share the cores (each JSON keeps the load).
#
#   bash benchmarks/run_cpu.sh            # ~6 min on 2 cores
#   PYTHON=python bash benchmarks/run_cpu.sh
set -euo pipefail
PYTHON=${PYTHON:-.venv/bin/python}
echo "== $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
"$PYTHON" benchmarks/forward_latency.py --models rtmdet-tiny rtmdet-s --runs 60 --block 5
"$PYTHON" benchmarks/train_step.py --models rtmdet-tiny rtmdet-s --sizes 320 640 --steps 5 --warmup 2
"$PYTHON" benchmarks/data_throughput.py --n 200 --repeats 2
"$PYTHON" benchmarks/assigner_memory.py --gts 500
"$PYTHON" benchmarks/summary.py
echo "== $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
