#!/usr/bin/env bash
# GPU latency in the paper's protocol (SPEC §11) for all five sizes, in one go:
#   torch CUDA FP16 and, when the `tensorrt` Python package is importable, a TensorRT FP16
#   engine built from our ONNX export. Batch 1, 640x640, forward only (no NMS).
#
# Usage (on a GPU machine, from the repository root):
#   bash benchmarks/gpu_check.sh                 # results in benchmarks/results/gpu/
#   INSTALL_TRT=1 bash benchmarks/gpu_check.sh   # first try `pip install tensorrt`
#   RUNS=300 WARMUP=100 SIZES="tiny s" PYTHON=.venv/bin/python bash benchmarks/gpu_check.sh
#
# Each measurement is one `rtmdet bench latency` JSON (environment, GPU name, versions,
# params/FLOPs, median/p90) plus a summary table printed at the end. TensorRT engines are
# cached under runs/bench/engines by ONNX hash, so reruns skip the engine build.
set -euo pipefail

PYTHON=${PYTHON:-python}
OUT=${OUT:-benchmarks/results/gpu}
RUNS=${RUNS:-200}
WARMUP=${WARMUP:-50}
SIZES=${SIZES:-"tiny s m l x"}
mkdir -p "$OUT"

if ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: torch sees no CUDA GPU (torch $("$PYTHON" -c 'import torch; print(torch.__version__)')); nothing to measure" >&2
    exit 1
fi
if [[ "${INSTALL_TRT:-0}" == "1" ]] && ! "$PYTHON" -c "import tensorrt" 2>/dev/null; then
    "$PYTHON" -m pip install -q tensorrt || echo "gpu_check: pip install tensorrt failed; TensorRT rows skipped"
fi
HAS_TRT=0
if "$PYTHON" -c "import tensorrt" 2>/dev/null; then HAS_TRT=1; else
    echo "gpu_check: tensorrt is not installed; measuring torch CUDA FP16 only (INSTALL_TRT=1 to try pip)"
fi

bench() {  # bench SIZE BACKEND
    "$PYTHON" -m rtmdet bench latency "rtmdet-$1" --backend "$2" --device cuda --fp16 \
        --size 640 --batch 1 --runs "$RUNS" --warmup "$WARMUP" --out "$OUT/$2-cuda-fp16-$1.json"
}
for s in $SIZES; do
    bench "$s" torch
    if [[ $HAS_TRT == 1 ]]; then bench "$s" tensorrt; fi
done

"$PYTHON" - "$OUT" $SIZES <<'PY'
import json, sys
from pathlib import Path
out, sizes = Path(sys.argv[1]), sys.argv[2:]
paper = {"tiny": 0.98, "s": 1.22, "m": 1.62, "l": 2.44, "x": 3.10}  # ms, TRT 8.4.3 FP16, RTX 3090
print(f"{'model':<13}{'torch fp16 ms':>15}{'TensorRT fp16 ms':>18}{'paper (3090) ms':>17}")
gpu = None
for s in sizes:
    cells = []
    for backend in ("torch", "tensorrt"):
        f = out / f"{backend}-cuda-fp16-{s}.json"
        if f.exists():
            r = json.loads(f.read_text())
            gpu = r["env"]["gpu"].get("name", gpu)
            ok = r["backend"] == backend
            cells.append(f"{r['latency']['median_ms']:.2f}" + ("" if ok else f" ({r['backend']})"))
        else:
            cells.append("—")
    print(f"{'rtmdet-' + s:<13}{cells[0]:>15}{cells[1]:>18}{paper[s]:>17.2f}")
print(f"GPU: {gpu}; medians, batch 1, 640x640, forward only")
PY
