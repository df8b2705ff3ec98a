"""COCO evaluation (``rtmdet eval CONFIG --weights W``).

Detections are produced with the test settings of the config's ``eval`` section (the paper's
main-table settings: score 0.001, NMS 0.65, top 300) or, with ``--fast``, the ablation setting
used in the paper's ablation tables (0.05 / top 100, about 0.3 AP lower) — the two must never be
mixed in one table, so the setting is recorded in every result. AP is computed by
faster-coco-eval (a C++ port of the COCO API) and falls back to pycocotools, which the tests show
gives the same numbers.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from rtmdet.config import Config, load_config
from rtmdet.utils.io import atomic_save_figure, atomic_write_json, atomic_write_text
from rtmdet.data.preprocess import normalize

log = logging.getLogger(__name__)
STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
FAST_SETTINGS = {"score_thr": 0.05, "max_per_img": 100}


@torch.no_grad()
def detect_dataset(model: torch.nn.Module, cfg: Config, score_thr: float, iou_thr: float,
                   max_per_img: int, nms_pre: int, device: str = "cpu",
                   max_images: int | None = None, to_results: Any = None
                   ) -> tuple[list[dict[str, Any]], Any]:
    """Run ``model`` on the val split; returns COCO-format results and the val source.

    ``to_results(det, meta, cat_ids)`` converts one image's detections (default
    :func:`to_coco_results`; RTMDet-Ins adds masks, see :mod:`rtmdet.evaluation.segm`)."""
    to_results = to_results or to_coco_results
    from rtmdet.data.loader import build_val_dataset, collate

    dataset = build_val_dataset(cfg)
    if max_images is not None:
        dataset = torch.utils.data.Subset(dataset, range(min(max_images, len(dataset))))
    source = dataset.dataset.source if isinstance(dataset, torch.utils.data.Subset) else dataset.source
    loader = DataLoader(dataset, batch_size=cfg.eval.batch_size, shuffle=False,
                        num_workers=0, collate_fn=collate)
    model.eval().to(device)
    results: list[dict[str, Any]] = []
    for images, metas in loader:
        dets = model.predict(normalize(images.to(device)), score_thr=score_thr, iou_thr=iou_thr,
                             max_per_img=max_per_img, nms_pre=nms_pre)
        for det, meta in zip(dets, metas):
            results += to_results(det, meta, source.cat_ids)
    return results, source


def to_coco_results(det: dict[str, torch.Tensor], meta: dict[str, Any],
                    cat_ids: list[int]) -> list[dict[str, Any]]:
    """Boxes on the padded canvas → original image pixels, clipped, as COCO xywh results."""
    boxes = det["boxes"].detach().cpu().double() / meta["scale"]
    h, w = meta["ori_shape"]
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
    out = []
    for (x1, y1, x2, y2), score, label in zip(boxes.tolist(), det["scores"].tolist(),
                                              det["labels"].tolist()):
        out.append({"image_id": int(meta["image_id"]), "category_id": int(cat_ids[label]),
                    "bbox": [round(x1, 3), round(y1, 3), round(x2 - x1, 3), round(y2 - y1, 3)],
                    "score": round(float(score), 6)})
    return out


def coco_evaluate(ann_file: str | Path, results: list[dict[str, Any]], iou_type: str = "bbox",
                  backend: str = "auto") -> tuple[dict[str, float], np.ndarray, list[int]]:
    """COCO metrics, the precision array (T, R, K, A, M) and the category ids of axis K.

    ``backend`` is ``faster`` (faster-coco-eval), ``pycocotools`` or ``auto`` (faster, else
    pycocotools).
    """
    if backend in ("auto", "faster"):
        try:
            from faster_coco_eval import COCO, COCOeval_faster as COCOeval
            backend = "faster"
        except ImportError:
            if backend == "faster":
                raise
            backend = "pycocotools"
    if backend == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann_file))
        cat_ids = sorted(gt.getCatIds())
        if not results:
            return {k: 0.0 for k in STAT_NAMES}, np.zeros((10, 101, len(cat_ids), 4, 3)), cat_ids
        dt = gt.loadRes([dict(r) for r in results])
        ev = COCOeval(gt, dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = {k: float(v) for k, v in zip(STAT_NAMES, ev.stats[:12])}
    return stats, np.asarray(ev.eval["precision"]), [int(c) for c in ev.params.catIds]


def per_class_ap(precision: np.ndarray, cat_ids: list[int], names: dict[int, str]
                 ) -> list[dict[str, Any]]:
    """AP (IoU .50:.95, all areas, 100 dets) per class; -1 entries are classes with no gt."""
    rows = []
    for k, cid in enumerate(cat_ids):
        p = precision[:, :, k, 0, -1]
        p = p[p > -1]
        rows.append({"category_id": cid, "name": names.get(cid, str(cid)),
                     "AP": float(p.mean()) if p.size else float("nan")})
    return rows


def plot_pr_curves(precision: np.ndarray, path: str | Path, title: str = "") -> Path:
    """Precision–recall at IoU 0.5 and 0.75 (all classes averaged, all areas, 100 dets)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recall = np.linspace(0, 1, 101)
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    for t, label in ((0, "IoU 0.50"), (5, "IoU 0.75")):
        p = precision[t, :, :, 0, -1]
        p = np.where(p > -1, p, np.nan)
        curve = np.nanmean(p, axis=1) if np.isfinite(p).any() else np.zeros(101)
        ax.plot(recall, np.nan_to_num(curve), label=label)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title=title)
    ax.legend()
    fig.tight_layout()
    return atomic_save_figure(fig, path)


def evaluate(model: torch.nn.Module, cfg: Config, out_dir: str | Path | None = None,
             fast: bool = False, device: str = "cpu", backend: str = "auto",
             max_images: int | None = None) -> dict[str, Any]:
    """Detect on the val split, compute COCO metrics, write eval.json / results / per-class AP /
    PR curve into ``out_dir``. Returns the eval.json content."""
    settings = {"score_thr": cfg.eval.score_thr, "iou_thr": cfg.eval.iou_thr,
                "max_per_img": cfg.eval.max_per_img, "nms_pre": cfg.eval.nms_pre}
    if fast:
        settings.update(FAST_SETTINGS)
    ins = cfg.model.type == "ins"     # masks too: segm AP next to bbox AP, same detections
    if ins:
        from . import segm as ins_evaluate
    results, source = detect_dataset(model, cfg, device=device, max_images=max_images,
                                     to_results=ins_evaluate.segm_results_fn(model) if ins
                                     else None, **settings)
    if ins:
        segm_results, results = results, ins_evaluate.strip_segm(results)
    stats, precision, cat_ids = coco_evaluate(source.ann_file, results, "bbox", backend)
    names = {cid: name for cid, name in zip(source.cat_ids, source.classes)}
    report = {"metrics": stats, "test_settings": settings, "setting": "ablation" if fast else "main",
              "num_images": len(source) if max_images is None else min(max_images, len(source)),
              "num_detections": len(results), "ann_file": str(source.ann_file),
              "per_class": per_class_ap(precision, cat_ids, names)}
    if ins:
        report.update(ins_evaluate.segm_report(source.ann_file, segm_results, names, backend))
    if out_dir is not None:
        out = Path(out_dir)
        atomic_write_json(out / "results.bbox.json", results)
        if ins:
            atomic_write_json(out / "results.segm.json", segm_results)
        atomic_write_text(out / "per_class_ap.csv", "category_id,name,AP\n" + "".join(
            f"{r['category_id']},{r['name']},{r['AP']:.4f}\n" for r in report["per_class"]))
        plot_pr_curves(precision, out / "pr_curve.png", f"{cfg.name}: AP {stats['AP']:.3f}")
        atomic_write_json(out / "eval.json", report)
    return report


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="preset, YAML, or a run's config.yaml")
    p.add_argument("overrides", nargs="*", help="dotted key=value overrides")
    p.add_argument("--weights", required=True, help="our checkpoint (EMA weights are used)")
    p.add_argument("--out", default=None, help="output folder (default: beside the weights)")
    p.add_argument("--fast", action="store_true",
                   help="ablation test setting (score 0.05, top 100) instead of the main one")
    p.add_argument("--device", default="cpu")
    p.add_argument("--backend", choices=["auto", "faster", "pycocotools"], default="auto")
    p.add_argument("--max-images", type=int, default=None)
    p.add_argument("--mlflow", action="store_true", help="log the metrics as an MLflow run")
    from .dota_patches import add_arguments as add_dota_arguments
    add_dota_arguments(p)                    # rotated configs: DOTA protocol options


def run(args: argparse.Namespace) -> int:
    from rtmdet.models.weights import load_weights

    cfg = load_config(args.config, args.overrides)
    model, _ = load_weights(args.weights, cfg)
    out = Path(args.out) if args.out else Path(args.weights).parent
    if cfg.model.type == "rotated":          # DOTA protocol instead of COCO (SPEC §10)
        from . import dota_patches as dota_pipeline
        return dota_pipeline.run(args, model, cfg, out)
    report = evaluate(model, cfg, out, args.fast, args.device, args.backend, args.max_images)
    m = report["metrics"]
    print(json.dumps({k: round(v, 4) for k, v in m.items()}))
    if "segm_metrics" in report:
        print("segm " + json.dumps({k: round(v, 4) for k, v in report["segm_metrics"].items()}))
    print(f"wrote {out / 'eval.json'} ({report['num_detections']} detections, "
          f"{report['setting']} test setting)")
    if args.mlflow:
        from rtmdet.engine.tracking import log_eval
        log_eval(cfg, report, out)
    return 0
