"""A fake pipeline job for the MLflow tests: the tracking calls of a train, eval or bench job
(the real API, a real config's params) without the minutes of training, so many of them can be
started at once against one store. Prints ``step N`` after each logged step (flushed), so a
test can kill it at a known point.

    python tests/helpers/tracking_job.py train RUN_DIR --ablation A --variant V [--steps 5] [--resume]
    python tests/helpers/tracking_job.py eval RUN_DIR --ablation A --variant V --ap 0.31
    python tests/helpers/tracking_job.py bench RUN_DIR --ablation A --variant V --latency 2.5
    python tests/helpers/tracking_job.py eval+bench RUN_DIR ... --ap 0.31 --latency 2.5   # both, in turn
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from rtmdet.config import load_config  # noqa: E402
from rtmdet.engine.tracking import RunLogger, log_bench, log_eval  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("job", choices=["train", "eval", "bench", "eval+bench"])
    p.add_argument("run_dir")
    p.add_argument("--ablation", required=True)
    p.add_argument("--variant", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--first-step", type=int, default=1, help="resumed jobs replay from here")
    p.add_argument("--sleep", type=float, default=0.0, help="seconds between steps")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--ap", type=float, default=0.0)
    p.add_argument("--latency", type=float, default=0.0)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cfg = load_config("rtmdet-tiny", {"seed": args.seed, "work_dir": args.run_dir,
                                      "tags": {"ablation": args.ablation, "variant": args.variant}})
    if args.job == "train":
        with RunLogger(cfg, "train", run_dir=args.run_dir, resume=args.resume) as run:
            print(f"run {run.run_id}", flush=True)
            for step in range(args.first_step, args.steps + 1):
                run.metrics({"loss": 1.0 / step, "lr": 0.001 * step}, step=step)
                print(f"step {step}", flush=True)
                time.sleep(args.sleep)
        return 0
    if "eval" in args.job:
        log_eval(cfg, {"metrics": {"AP": args.ap, "AP50": min(1.0, 2 * args.ap)},
                       "setting": "ablation"}, args.run_dir)
    if "bench" in args.job:
        result = {"latency": {"median_ms": args.latency, "p90_ms": 1.1 * args.latency},
                  "params": 1000, "flops": 2000, "backend": "torch", "device": "cpu",
                  "size": 64, "batch": 1, "threads": 1}
        log_bench(cfg, result, None, [args.run_dir])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
