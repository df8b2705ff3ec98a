"""COCO box evaluation: detections on the val split → COCO results → AP (``rtmdet eval``; the
whole protocol with files is :func:`rtmdet.evaluation.evaluate.evaluate`).

Detections are produced with the test settings of the config's ``eval`` section (the paper's
main-table settings: score 0.001, NMS 0.65, top 300) or, with ``--fast``, the ablation setting
used in the paper's ablation tables (0.05 / top 100, about 0.3 AP lower) — the two must never be
mixed in one table, so the setting is recorded in every result. AP is computed by
faster-coco-eval (a C++ port of the COCO API) and falls back to pycocotools, which the tests show
gives the same numbers.
"""
from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from rtmdet.config import Config
from rtmdet.data.loader import build_val_dataset, collate
from rtmdet.data.preprocess import normalize
from rtmdet.utils.io import atomic_save_figure, pyplot

log = logging.getLogger(__name__)
# faster-coco-eval logs its summary at INFO: the CLI prints its own table (rtmdet.commands.eval_tables)
logging.getLogger("faster_coco_eval").setLevel(logging.WARNING)
STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
FAST_SETTINGS = {"score_thr": 0.05, "max_per_img": 100}


@torch.no_grad()
def detect_dataset(model: torch.nn.Module, cfg: Config, score_thr: float, iou_thr: float,
                   max_per_img: int, nms_pre: int, device: str = "cpu",
                   max_images: int | None = None, to_results: Any = None,
                   progress: bool = False, dtype: str = "fp32") -> tuple[list[dict[str, Any]], Any]:
    """Run ``model`` on the val split; returns COCO-format results and the val source
    (``progress``: a tqdm bar over images on stderr, for the CLI; ``dtype``: the forward's
    precision, :meth:`rtmdet.models.detector.RTMDet.predict`).

    ``to_results(det, meta, cat_ids)`` converts one image's detections (default
    :func:`to_coco_results`; RTMDet-Ins adds masks, see :mod:`rtmdet.evaluation.segm`)."""
    to_results = to_results or to_coco_results
    dataset = build_val_dataset(cfg)
    if max_images is not None:
        dataset = torch.utils.data.Subset(dataset, range(min(max_images, len(dataset))))
    source = dataset.dataset.source if isinstance(dataset, torch.utils.data.Subset) else dataset.source
    loader = DataLoader(dataset, batch_size=cfg.eval.batch_size, shuffle=False,
                        num_workers=0, collate_fn=collate)
    model.eval().to(device)
    results: list[dict[str, Any]] = []
    bar = tqdm(total=len(dataset), desc="eval", unit="img", disable=not progress,
               mininterval=1.0, dynamic_ncols=True)
    for images, metas in loader:
        dets = model.predict(normalize(images.to(device)), score_thr=score_thr, iou_thr=iou_thr,
                             max_per_img=max_per_img, nms_pre=nms_pre, dtype=dtype)
        for det, meta in zip(dets, metas):
            results += to_results(det, meta, source.cat_ids)
        bar.update(len(metas))
    bar.close()
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
            # lazy: the backend is chosen per call (faster-coco-eval when importable)
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
    plt = pyplot()

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
