"""Training parity on the proxy data set: the official RTMDet-tiny (mmdetection 3.3.0) vs ours,
the same recipe, the same images, the same number of iterations, several seeds each side, one
COCO evaluator for both (issue 14 item 4; not part of ``make test``).

Usage (data from ``rtmdet data synth-proxy --root data/proxy --val 300``)::

    python benchmarks/parity_official.py [--iters 300] [--seeds 0 1 2] [--curve-every 50]
        [--data data/proxy] [--margin 1.0] [--threads 1] [--reuse] [--force]
        [--out benchmarks/results/parity_official.json] [--plot benchmarks/results/parity_curve.png]

The recipe is **ours, resolved once** (``rtmdet-tiny`` preset + the proxy scale's schedule keys
scaled to ``--iters``: 6 "epochs" of N/6 iterations, flat lr for the first 3, cosine to 0.05·lr
over the last 3, warm-up and EMA time constant N/6 iterations, EMA momentum 0.01, the last
epoch = stage 2, batch 8, 128 px, AdamW lr = 0.004 × 8 / ``--base-batch-size`` (4, as the
proxy scale: 0.008), weight decay 0.05 without norm/bias decay) and handed to the official side
as a JSON (``parity_official_mm.py``, which also checks that the official tiny cache/MixUp/
resize settings are ours). Official side: mmengine ``Runner`` (``IterBasedTrainLoop``) on CPU in
the oracle venv that ``tests/reference/make_reference.py`` builds (``$RTMDET_ORACLE``, default
``../oracle``).

Evaluation: each side writes a COCO results JSON of the val images (its EMA weights, score >
0.001, NMS 0.65, top 300, nms_pre 30000: the official tiny test_cfg, which is also our default)
and both are scored by the same call, pycocotools ``COCOeval`` (bbox) on the val annotation
file (:func:`rtmdet.evaluation.coco.coco_evaluate`). Ours is also evaluated every
``--curve-every`` iterations (AP-vs-iteration curve). Statistics and verdict:
``benchmarks/parity_stats.py`` (per-side t intervals, Welch interval of the difference).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "reference"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_reference  # noqa: E402  (the oracle venv: one builder for both uses)
from parity_stats import plot_curve, side_summary, verdict, welch_interval  # noqa: E402

from rtmdet.config import Config, load_config  # noqa: E402
from rtmdet.engine.optim import scaled_lr  # noqa: E402
from rtmdet.engine.trainer import Trainer  # noqa: E402
from rtmdet.evaluation.coco import coco_evaluate, detect_dataset  # noqa: E402
from rtmdet.utils.errors import UserError  # noqa: E402
from rtmdet.utils.io import atomic_write_json  # noqa: E402

EPOCHS, FLAT_EPOCHS, STAGE2_EPOCHS = 6, 3, 1   # the proxy scale's shape (config/config.yaml)
DRIVER = Path(__file__).resolve().parent / "parity_official_mm.py"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=300, help=f"iterations, a multiple of {EPOCHS}")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--curve-every", type=int, default=50, help="evaluate ours every N iterations")
    ap.add_argument("--data", default="data/proxy", help="proxy data root")
    ap.add_argument("--img-size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--base-batch-size", type=int, default=4,
                    help="lr = 0.004 x batch / this (the proxy scale's 4 gives 0.008)")
    ap.add_argument("--margin", type=float, default=1.0, help="AP x100 the verdict tolerates")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per training")
    ap.add_argument("--work-dir", default="runs/parity_official")
    ap.add_argument("--out", default="benchmarks/results/parity_official.json")
    ap.add_argument("--plot", default="benchmarks/results/parity_curve.png")
    ap.add_argument("--reuse", action="store_true", help="keep finished seeds of --work-dir")
    ap.add_argument("--force", action="store_true", help="overwrite --out / --plot")
    args = ap.parse_args(argv)
    if args.iters < EPOCHS or args.iters % EPOCHS:
        raise UserError(f"--iters: {args.iters} is not a positive multiple of {EPOCHS}")
    if args.curve_every < 1:
        raise UserError("--curve-every: must be >= 1")
    for path in (args.out, args.plot):
        if Path(path).exists() and not args.force:
            raise UserError(f"{path}: exists; pass --force to overwrite")
    return args


def proxy_files(root: Path) -> dict[str, Any]:
    """The proxy data set's files and class names (category-id order); a one-line error when
    the data has not been generated."""
    files = {"train_ann": "annotations/instances_train.json",
             "val_ann": "annotations/instances_val.json",
             "train_images": "images/train", "val_images": "images/val"}
    for key, rel in files.items():
        if not (root / rel).exists():
            raise UserError(f"{root / rel}: missing; run `rtmdet data synth-proxy --root {root} "
                            f"--val 300` first")
    cats = json.loads((root / files["val_ann"]).read_text())["categories"]
    return {**files, "root": str(root), "classes": [c["name"] for c in sorted(
        cats, key=lambda c: c["id"])]}


def our_config(args: argparse.Namespace, data: dict[str, Any], seed: int) -> Config:
    per_epoch = args.iters // EPOCHS
    return load_config("rtmdet-tiny", {
        "seed": seed, "work_dir": str(Path(args.work_dir) / "ours" / f"seed{seed}"),
        "data.root": data["root"], "data.num_workers": 0, "data.img_size": args.img_size,
        "model.head.num_classes": len(data["classes"]),
        "train.batch_size": args.batch, "train.base_batch_size": args.base_batch_size,
        "train.epochs": EPOCHS, "train.max_iters_per_epoch": per_epoch,
        "train.flat_epochs": FLAT_EPOCHS, "train.stage2_epochs": STAGE2_EPOCHS,
        "train.warmup_iters": per_epoch, "train.ema_momentum": 0.01,
        "train.ema_warmup": float(per_epoch), "train.checkpoint_interval": EPOCHS,
        "train.log_interval": 10, "train.threads": args.threads, "train.device": "cpu"})


def recipe_of(cfg: Config, data: dict[str, Any], iters: int) -> dict[str, Any]:
    """What the official side must do, read off our resolved config (one source of truth)."""
    t, d, e = cfg.train, cfg.data, cfg.eval
    per_epoch = iters // t.epochs
    return {"iters": iters, "img_size": d.img_size, "batch_size": t.batch_size,
            "lr": scaled_lr(t.base_lr, t.base_batch_size, t.batch_size),
            "weight_decay": t.weight_decay, "betas": list(t.betas),
            "warmup_iters": t.warmup_iters, "warmup_ratio": t.warmup_ratio,
            "flat_iters": t.flat_epochs * per_epoch, "min_lr_ratio": t.min_lr_ratio,
            "stage2_start": (t.epochs - t.stage2_epochs) * per_epoch,
            "ema_momentum": t.ema_momentum, "ema_warmup": t.ema_warmup,
            "log_interval": t.log_interval,
            "data": {**data, "min_img_size": d.min_img_size,
                     "mosaic_cache_size": d.mosaic_cache_size, "mosaic_pop": d.mosaic_pop,
                     "mixup_cache_size": d.mixup_cache_size, "mixup_pop": d.mixup_pop,
                     "mixup_prob": d.mixup_prob, "resize_ratio": list(d.resize_ratio),
                     "stage2_resize_ratio": list(d.stage2_resize_ratio)},
            "eval": {"score_thr": e.score_thr, "iou_thr": e.iou_thr,
                     "max_per_img": e.max_per_img, "nms_pre": e.nms_pre}}


def coco_ap(ann_file: Path, results: list[dict[str, Any]]) -> dict[str, float]:
    """The one evaluator of both sides: pycocotools COCOeval, bbox, AP etc. ×100 (COCO's −1,
    "no ground truth of that size", stays −1)."""
    stats, _, _ = coco_evaluate(ann_file, results, "bbox", "pycocotools")
    return {k: 100 * v if v >= 0 else v for k, v in stats.items()}


class CurveTrainer(Trainer):
    """Our trainer, evaluating a copy of the EMA weights every ``every`` iterations and at the
    end; the evaluation time is kept apart from the training time."""

    def __init__(self, cfg: Config, every: int, ann_file: Path) -> None:
        super().__init__(cfg, cfg.work_dir)
        self.every, self.ann_file = every, ann_file
        self.total = cfg.train.epochs * self.iters_per_epoch
        self.curve: dict[int, float] = {}
        self.final_results: list[dict[str, Any]] = []
        self.eval_s = self.eval_cpu_s = 0.0

    def train_step(self, images, targets):  # type: ignore[override]
        losses = super().train_step(images, targets)
        done = self.global_iter + 1          # Trainer counts the step after this returns
        if done % self.every == 0 or done == self.total:
            t0, c0 = time.perf_counter(), time.process_time()
            e = self.cfg.eval
            results, _ = detect_dataset(copy.deepcopy(self.ema.module), self.cfg, e.score_thr,
                                        e.iou_thr, e.max_per_img, e.nms_pre, device="cpu")
            self.curve[done] = coco_ap(self.ann_file, results)["AP"]
            if done == self.total:
                self.final_results = results
            self.eval_s += time.perf_counter() - t0
            self.eval_cpu_s += time.process_time() - c0
        return losses


def train_ours(args: argparse.Namespace, data: dict[str, Any], seed: int, ann: Path
               ) -> dict[str, Any]:
    cfg = our_config(args, data, seed)
    out = Path(cfg.work_dir) / "ours_results.json"
    if args.reuse and out.exists():
        return json.loads(out.read_text())
    trainer = CurveTrainer(cfg, args.curve_every, ann)
    t0, c0 = time.perf_counter(), time.process_time()
    trainer.fit()
    train_s = time.perf_counter() - t0 - trainer.eval_s
    cpu_s = time.process_time() - c0 - trainer.eval_cpu_s
    rec = {"seed": seed, "train_s": train_s, "sec_per_iter": train_s / trainer.total,
           "cpu_sec_per_iter": cpu_s / trainer.total,
           "eval_s": trainer.eval_s, "curve": {str(k): v for k, v in trainer.curve.items()},
           "results": trainer.final_results}
    atomic_write_json(out, rec)
    print(f"ours seed {seed}: AP {trainer.curve[trainer.total]:.2f}, {train_s:.0f} s training",
          flush=True)
    return rec


def train_official(args: argparse.Namespace, recipe_file: Path, seed: int) -> dict[str, Any]:
    work = Path(args.work_dir) / "official" / f"seed{seed}"
    out = work / "official_results.json"
    if not (args.reuse and out.exists()):
        work.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, RTMDET_ORACLE=str(make_reference.ORACLE),
                   OMP_NUM_THREADS=str(args.threads), PYTHONWARNINGS="ignore")
        env.pop("PYTHONPATH", None)          # the oracle venv must not see our package
        cmd = [str(make_reference.VENV_PY), str(DRIVER), "--recipe", str(recipe_file),
               "--seed", str(seed), "--work-dir", str(work), "--threads", str(args.threads)]
        with open(work / "driver.log", "w") as log:
            rc = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
        if rc:
            tail = (work / "driver.log").read_text().splitlines()[-15:]
            raise RuntimeError(f"official seed {seed} failed (rc {rc}):\n" + "\n".join(tail))
    rec = json.loads(out.read_text())
    print(f"official seed {seed}: {len(rec['results'])} detections, {rec['train_s']:.0f} s "
          "training", flush=True)
    return rec


def timing(rec: dict[str, Any]) -> dict[str, float]:
    """Training wall time, and per iteration wall and process CPU time (one thread: the CPU
    time is what the iteration costs on a quiet machine, whatever else runs beside it)."""
    return {k: rec[k] for k in ("train_s", "sec_per_iter", "cpu_sec_per_iter")}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t_start = time.perf_counter()
    data = proxy_files(Path(args.data).resolve())
    ann = Path(data["root"]) / data["val_ann"]
    setup = make_reference.ensure_venv(rotated=False)
    recipe = recipe_of(our_config(args, data, args.seeds[0]), data, args.iters)
    recipe_file = Path(args.work_dir) / "recipe.json"
    atomic_write_json(recipe_file, recipe)
    sides: dict[str, dict[int, dict[str, Any]]] = {"ours": {}, "official": {}}
    for seed in args.seeds:
        rec = train_ours(args, data, seed, ann)
        sides["ours"][seed] = {**coco_ap(ann, rec["results"]), **timing(rec),
                               "curve": {int(k): v for k, v in rec["curve"].items()}}
    for seed in args.seeds:
        rec = train_official(args, recipe_file, seed)
        sides["official"][seed] = {**coco_ap(ann, rec["results"]), **timing(rec)}
    ours = [sides["ours"][s]["AP"] for s in args.seeds]
    official = [sides["official"][s]["AP"] for s in args.seeds]
    diff = welch_interval(ours, official)
    report = {
        "what": "COCO box AP x100 on the proxy val images, EMA weights, same evaluator "
                "(pycocotools COCOeval bbox) for both sides' results JSON",
        "command": "python benchmarks/parity_official.py " + " ".join(sys.argv[1:] if argv is None
                                                                       else argv),
        "official": {"versions": make_reference.OFFICIAL, "config": "rtmdet_tiny_8xb32-300e_coco.py",
                     "loop": "mmengine Runner, IterBasedTrainLoop, CPU",
                     "summary": side_summary(official), "per_seed": sides["official"]},
        "ours": {"config": "rtmdet-tiny preset", "summary": side_summary(ours),
                 "per_seed": sides["ours"]},
        "difference": diff, "margin": args.margin, "verdict": verdict(diff, args.margin),
        "rule": "ours not worse when the 95 % Welch interval of AP(ours) - AP(official) has "
                "its lower end >= -margin or covers 0",
        "recipe": {k: v for k, v in recipe.items() if k != "data"},
        "data": {k: v for k, v in recipe["data"].items() if k != "root"},
        "oracle_setup": setup or "reused", "wall_s": time.perf_counter() - t_start,
    }
    atomic_write_json(args.out, report)
    plot_curve({s: sides["ours"][s]["curve"] for s in args.seeds}, official, args.iters,
               args.plot)
    o, f = report["ours"]["summary"], report["official"]["summary"]
    fmt = lambda s: f"{s['mean']:.2f} [{s['ci_low']}, {s['ci_high']}] (n={s['n']})"  # noqa: E731
    print(f"ours {fmt(o)}\nofficial {fmt(f)}\ndelta {diff['delta']:.2f} "
          f"[{diff['ci_low']}, {diff['ci_high']}] -> {report['verdict']}\nwrote {args.out}, "
          f"{args.plot}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except UserError as exc:
        print(f"parity_official: error: {exc}", file=sys.stderr)
        sys.exit(2)
