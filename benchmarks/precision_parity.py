"""fp32 vs bf16 vs int8 CPU inference of one trained checkpoint (issue 18, items 2-3): COCO AP on
the validation set through the normal evaluator, the detections' agreement with fp32, and
forward latency timed in interleaved rounds in the same process.

Usage (the proxy scale; `rtmdet data synth-proxy --root data/proxy --val 300` makes the data):
``python benchmarks/precision_parity.py --weights runs/…/final.pt [CONFIG] [key=value ...]
[--dtypes fp32 bf16 int8] [--engines torch openvino] [--calib-images 32] [--max-images N]
[--fast] [--size 640] [--threads 2] [--rounds 10] [--runs-per-round 3]
[--out benchmarks/results/precision_parity.json]``

- **Accuracy**: each precision runs ``rtmdet.evaluation.evaluate.evaluate`` (the code behind
  ``rtmdet eval``) on the same images with the same test settings; ``AP − AP(fp32)`` is
  reported. bf16 is the torch forward under CPU autocast with fp32 post-processing; int8 is the
  statically quantised ONNX graph in onnxruntime, calibrated on ``--calib-images`` *training*
  images (``rtmdet.export.quantize``). With ``--engines … openvino`` the fp32 graph compiled by
  OpenVINO at fp32 and bf16 is evaluated too (rows ``openvino_fp32``/``openvino_bf16``; the
  code behind ``rtmdet eval --engine openvino``).
- **Agreement**: the fp32 detections scoring ≥ ``--agree-score`` (the confident ones; at the
  main test setting's 0.001 most of the 300 per image are noise) are matched one to one,
  greedily by fp32 score, to the other precision's detections of the same image and class
  scoring ≥ half that threshold (so a score that moved a little across the cut still matches),
  at IoU ≥ ``--agree-iou`` (0.9); zero-area boxes are skipped and counted. Reported: the matched
  fraction, the mean IoU and mean |score difference| of the matches.
- **Latency**: forward only at ``--size``² batch 1 with ``--threads`` threads on a fixed
  random input (values do not change the kernels): torch fp32 (BN folded, channels-last: the
  default ``predict`` path), torch bf16, onnxruntime fp32, onnxruntime int8 (its graph
  calibrated on real images at that size), and OpenVINO fp32/bf16 with ``--engines openvino``. Timed in rounds that visit every runner in turn
  (one discarded call each to absorb the switch of thread pools), so load drift on a shared
  machine hits them alike; per runner the median and p10/p90 over all timed calls, and the
  ratios to torch fp32 per round (median and range over rounds).

Nothing here is hard-coded: every number in the JSON was measured by this run.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rtmdet.bench.latency import make_runner, time_runner
from rtmdet.bench.runners import model_hash, pin_threads
from rtmdet.commands.common import (add_overrides, checkpoint_config, optional_config, parse,
                                    precision_model)
from rtmdet.evaluation.evaluate import evaluate
from rtmdet.export.quantize import calibration_inputs
from rtmdet.models.weights import load_weights
from rtmdet.utils import envinfo
from rtmdet.utils.io import atomic_write_json

METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of COCO xywh boxes ``a`` (n, 4) against ``b`` (m, 4)."""
    a2, b2 = a.copy(), b.copy()
    a2[:, 2:] += a2[:, :2]
    b2[:, 2:] += b2[:, :2]
    lt = np.maximum(a2[:, None, :2], b2[None, :, :2])
    rb = np.minimum(a2[:, None, 2:], b2[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    union = a[:, 2:].prod(-1)[:, None] + b[:, 2:].prod(-1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def agreement(ref: list[dict], other: list[dict], score: float, iou: float) -> dict[str, Any]:
    """How many confident fp32 detections ``other`` reproduces (see the module docstring)."""
    def group(results: list[dict], thr: float) -> dict[tuple[int, int], list[dict]]:
        out: dict[tuple[int, int], list[dict]] = {}
        for r in results:
            if r["score"] >= thr and r["bbox"][2] > 0 and r["bbox"][3] > 0:
                out.setdefault((r["image_id"], r["category_id"]), []).append(r)
        return out
    # zero-area boxes (on the letterbox padding, clipped to the image) overlap nothing, not
    # even themselves: COCO scores them as misses, so they are left out and counted
    degenerate = sum(r["score"] >= score and not (r["bbox"][2] > 0 and r["bbox"][3] > 0)
                     for r in ref)
    want, have = group(ref, score), group(other, score / 2)
    n = matched = 0
    ious, dscore = [], []
    for key, dets in want.items():
        dets = sorted(dets, key=lambda r: -r["score"])
        n += len(dets)
        cands = have.get(key, [])
        if not cands:
            continue
        m = iou_matrix(np.array([d["bbox"] for d in dets], float),
                       np.array([c["bbox"] for c in cands], float))
        taken = np.zeros(len(cands), bool)
        for i, d in enumerate(dets):
            row = np.where(taken, -1.0, m[i])
            j = int(row.argmax())
            if row[j] >= iou:
                taken[j] = True
                matched += 1
                ious.append(float(row[j]))
                dscore.append(abs(d["score"] - cands[j]["score"]))
    return {"fp32_detections": n, "fp32_zero_area_skipped": int(degenerate), "matched": matched,
            "matched_fraction": matched / n if n else None,
            "mean_iou": float(np.mean(ious)) if ious else None,
            "mean_abs_score_diff": float(np.mean(dscore)) if dscore else None,
            "score_thr": score, "iou_thr": iou}


def accuracy_plan(dtypes: list[str], engines: list[str]) -> list[tuple[str, str, str]]:
    """(row name, dtype, engine): torch rows are named by dtype (fp32 first: the reference),
    OpenVINO rows ``openvino_<dtype>`` for fp32/bf16 (int8 is onnxruntime's)."""
    plan = [(d, d, "torch") for d in dtypes] if "torch" in engines else [("fp32", "fp32", "torch")]
    return plan + [(f"openvino_{d}", d, "openvino") for d in dtypes
                   if "openvino" in engines and d != "int8"]


def accuracy(model: torch.nn.Module, cfg, dtypes: list[str], args, work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    results: dict[str, list[dict]] = {}
    for name, dtype, engine in accuracy_plan(dtypes, args.engines):
        t0 = time.perf_counter()
        m, ran = precision_model(model, cfg, dtype, "cpu", args.calib_images, cfg.data.img_size,
                                 work / "onnx", engine)
        rep = evaluate(m, cfg, work / name, args.fast, "cpu", "auto", args.max_images,
                       dtype=ran, engine=engine)
        results[name] = json.loads(Path(rep["files"][0]).read_text())
        out[name] = {"requested": dtype, "ran": ran, "engine": engine,
                     "num_images": rep["num_images"], "num_detections": rep["num_detections"],
                     "metrics": {k: rep["metrics"][k] for k in METRICS},
                     "eval_s": round(time.perf_counter() - t0, 1),
                     **({"int8": m.info} if ran == "int8" else {}),
                     **({"openvino": m.info} if engine == "openvino" else {})}
        print(f"{name:13s} (ran {ran}): AP {rep['metrics']['AP']:.4f} AP50 "
              f"{rep['metrics']['AP50']:.4f} on {rep['num_images']} images "
              f"({out[name]['eval_s']} s)", flush=True)
    if "fp32" in out:
        base = out["fp32"]["metrics"]
        for dtype, row in out.items():
            row["delta_vs_fp32"] = {k: row["metrics"][k] - base[k] for k in METRICS}
            if dtype != "fp32":
                row["agreement"] = agreement(results["fp32"], results[dtype], args.agree_score,
                                             args.agree_iou)
    return out


def latency(model: torch.nn.Module, cfg, dtypes: list[str], args, work: Path) -> dict[str, Any]:
    pin_threads(args.threads)
    model = model.eval().float().cpu()
    size = args.size
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    tag = f"{cfg.name}-{size}-b1-{model_hash(model, f'{size}|1')}"
    plan = [("torch_fp32", "torch", "fp32"), ("torch_bf16", "torch", "bf16"),
            ("ort_fp32", "onnxruntime", "fp32"), ("ort_int8", "onnxruntime", "int8")]
    if "openvino" in args.engines:
        plan += [("openvino_fp32", "openvino", "fp32"), ("openvino_bf16", "openvino", "bf16")]
    plan = [p for p in plan if p[2] in dtypes]
    calib = calibration_inputs(cfg, args.calib_images, size) if "int8" in dtypes else None
    runners, notes = {}, {}
    for name, backend, dtype in plan:
        runners[name], notes[name] = make_runner(model, x, backend, "cpu", False, args.threads,
                                                 work / "onnx", tag, dtype=dtype, calib=calib)
        time_runner(runners[name], 0, args.warmup)
    times: dict[str, list[list[float]]] = {n: [] for n in runners}
    for _ in range(args.rounds):
        for name, runner in runners.items():
            times[name].append(time_runner(runner, args.runs_per_round, 1))
    out: dict[str, Any] = {"size": size, "batch": 1, "threads": args.threads,
                           "rounds": args.rounds, "runs_per_round": args.runs_per_round,
                           "runners": {}}
    ref = "torch_fp32" if "torch_fp32" in times else None
    for name, rounds in times.items():
        flat = np.concatenate(rounds)
        row = {"dtype_ran": runners[name].dtype, "backend": runners[name].backend,
               "median_ms": float(np.median(flat)), "p10_ms": float(np.percentile(flat, 10)),
               "p90_ms": float(np.percentile(flat, 90)),
               "round_medians_ms": [round(float(np.median(r)), 3) for r in rounds],
               "fallback": notes[name]}
        if ref:
            ratios = [np.median(a) / np.median(b) for a, b in zip(times[ref], rounds)]
            row["speedup_vs_torch_fp32"] = {"median": float(np.median(ratios)),
                                            "min": float(np.min(ratios)),
                                            "max": float(np.max(ratios))}
        out["runners"][name] = row
        s = row.get("speedup_vs_torch_fp32")
        print(f"{name:11s} {row['median_ms']:8.2f} ms (p10 {row['p10_ms']:.2f}, p90 "
              f"{row['p90_ms']:.2f})" + (f"  x{s['median']:.2f} [{s['min']:.2f}, {s['max']:.2f}]"
                                         f" vs torch fp32" if s else ""), flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    optional_config(p)
    add_overrides(p)                             # key=value anywhere, as in every rtmdet command
    p.add_argument("--weights", required=True, help="a trained checkpoint (final.pt)")
    p.add_argument("--dtypes", nargs="+", default=["fp32", "bf16", "int8"],
                   choices=["fp32", "bf16", "int8"], help="precisions (fp32 is the reference)")
    p.add_argument("--engines", nargs="+", default=["torch"], choices=["torch", "openvino"],
                   help="inference engines (openvino: fp32/bf16 rows beside torch's)")
    p.add_argument("--calib-images", type=int, default=32, help="int8 calibration images")
    p.add_argument("--max-images", type=int, default=None, help="first N val images only")
    p.add_argument("--fast", action="store_true", help="ablation test setting (0.05 / top 100)")
    p.add_argument("--agree-score", type=float, default=0.3, help="confident fp32 detections")
    p.add_argument("--agree-iou", type=float, default=0.9, help="IoU of a match")
    p.add_argument("--size", type=int, default=640, help="latency input side")
    p.add_argument("--threads", type=int, default=2, help="intra-op threads (latency and eval)")
    p.add_argument("--rounds", type=int, default=10, help="interleaved latency rounds")
    p.add_argument("--runs-per-round", type=int, default=3, help="timed calls per runner/round")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls per runner first")
    p.add_argument("--no-latency", action="store_true", help="accuracy only")
    p.add_argument("--no-accuracy", action="store_true", help="latency only")
    p.add_argument("--work-dir", default="runs/precision_parity", help="evals and ONNX files")
    p.add_argument("--out", default="benchmarks/results/precision_parity.json", help="JSON out")
    args = parse(p, sys.argv[1:] if argv is None else argv)
    torch.manual_seed(0)
    pin_threads(args.threads)
    cfg = checkpoint_config(args.config, args.weights, args.overrides)
    model, _ = load_weights(args.weights, cfg)
    model.eval()
    work = Path(args.work_dir)
    dtypes = list(dict.fromkeys(["fp32", *args.dtypes]))     # fp32 always: the reference
    res: dict[str, Any] = {"weights": str(args.weights), "config": cfg.name,
                           "data_root": cfg.data.root, "img_size": cfg.data.img_size,
                           "setting": "ablation" if args.fast else "main",
                           "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    t0 = time.perf_counter()
    if not args.no_accuracy:
        res["accuracy"] = accuracy(model, cfg, dtypes, args, work)
    if not args.no_latency:
        res["latency"] = latency(model, cfg, dtypes, args, work)
    res["wall_s"] = round(time.perf_counter() - t0, 1)
    res["env"] = envinfo.collect()
    atomic_write_json(args.out, res)
    print(f"wrote {args.out} ({res['wall_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
