"""The DOTA protocol's scoring: VOC07 rotated mAP and the Task 1 submission files (SPEC §10);
the merge of patch detections into full images is :mod:`rtmdet.data.dota_patches`.

DOTA images (up to ~4000 px) are split into patches for training and inference, so detections
come per patch. They are mapped back to the full image and merged per image and class with
rotated NMS 0.1, then scored as the official devkit does (Task 1, oriented boxes).

Formats (plain Python / tensors, so they are easy to produce from any loader):

- detections: ``{image_id: {"rboxes": (K, 5), "scores": (K,), "labels": (K,)}}``;
- annotations: ``{image_id: {"rboxes": (G, 5), "labels": (G,), "difficult": (G,) bool}}``;
- patch index (``index.json`` of ``rtmdet.data.dota_patches``, or just its ``patches`` list):
  entries ``{"patch": str, "image": str, "x": float, "y": float, "scale": float, ...}`` — the
  patch's top-left corner in *original*
  image pixels and the resize factor applied to the window, so that
  ``patch_xy = (image_xy − (x, y)) · scale`` (1.0 for single scale, the rate for multi-scale).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal, Mapping

import numpy as np
import torch

from rtmdet.data.dota import DOTA_CLASSES
from rtmdet.geometry.rotated import rbox_to_poly
from rtmdet.geometry.rotated_iou import rbox_iou
from rtmdet.utils.io import atomic_write_text

log = logging.getLogger(__name__)

Dets = Mapping[str, Mapping[str, torch.Tensor]]


# ----------------------------------------------------------------------------- AP
def voc_ap(recall: np.ndarray, precision: np.ndarray,
           mode: Literal["11point", "area"] = "11point") -> float:
    """VOC07 11-point AP (mean of the best precision at recall ≥ 0, 0.1, …, 1), or the area
    under the monotone precision envelope (VOC2010+ style)."""
    if mode == "11point":
        ap = 0.0
        for t in np.linspace(0, 1, 11):
            above = precision[recall >= t]
            ap += (above.max() if above.size else 0.0) / 11
        return float(ap)
    if mode != "area":
        raise ValueError(f"AP mode must be '11point' or 'area', got {mode!r}")
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def eval_class(dets: list[tuple[torch.Tensor, torch.Tensor]],
               gts: list[tuple[torch.Tensor, torch.Tensor]], iou_thr: float = 0.5,
               strict: bool = True, mode: Literal["11point", "area"] = "11point") -> dict:
    """AP of one class. ``dets[i]`` = (rboxes, scores) and ``gts[i]`` = (rboxes, difficult) of
    image ``i``.

    Detections are visited by descending score over all images; each is matched to the gt of
    highest IoU in its image. Above the threshold (``>`` when ``strict``, as the devkit) a
    difficult gt makes it neither TP nor FP, an unmatched gt makes it a TP, an already matched
    one a FP. Difficult gts do not count in the recall denominator.
    """
    npos = int(sum(int((~d.bool()).sum()) for _, d in gts))
    records = []                                     # (score, image, best gt, best iou)
    for i, ((boxes, scores), (gt_boxes, _)) in enumerate(zip(dets, gts)):
        if boxes.shape[0] == 0:
            continue
        if gt_boxes.shape[0]:
            iou = rbox_iou(boxes.double(), gt_boxes.double())
            best_iou, best_gt = iou.max(1)
        else:
            best_iou = torch.zeros(boxes.shape[0], dtype=torch.float64)
            best_gt = torch.full((boxes.shape[0],), -1)
        records += [(float(s), i, int(g), float(o))
                    for s, g, o in zip(scores.tolist(), best_gt, best_iou)]
    records.sort(key=lambda r: -r[0])                # stable: ties keep image order
    matched = [torch.zeros(g.shape[0], dtype=torch.bool) for g, _ in gts]
    tp, fp = [], []
    for _, img, g, ov in records:
        hit = ov > iou_thr if strict else ov >= iou_thr
        if hit and bool(gts[img][1][g]):
            continue                                 # difficult: ignored
        if hit and not matched[img][g]:
            matched[img][g] = True
            tp.append(1.0), fp.append(0.0)
        else:
            tp.append(0.0), fp.append(1.0)
    tp_c, fp_c = np.cumsum(tp), np.cumsum(fp)
    recall = tp_c / max(npos, 1)
    precision = tp_c / np.maximum(tp_c + fp_c, np.finfo(np.float64).eps)
    ap = voc_ap(recall, precision, mode) if npos > 0 else float("nan")
    return {"ap": ap, "num_gts": npos, "num_dets": len(tp),
            "recall": float(recall[-1]) if len(tp) else 0.0}


def eval_rotated_map(dets: Dets, annotations: Dets, class_names: tuple[str, ...] = DOTA_CLASSES,
                     iou_thr: float = 0.5, strict: bool = True,
                     mode: Literal["11point", "area"] = "11point") -> dict:
    """Per-class AP and mAP over ``annotations``' images. Classes without a non-difficult gt
    have AP NaN and are left out of the mean (as mmdet); detections on images without
    annotations are counted and logged, not scored."""
    extra = [k for k in dets if k not in annotations]
    if extra:
        log.warning("%d detected image(s) have no annotations and are skipped, e.g. %s",
                    len(extra), extra[0])
    images = list(annotations)
    empty = {"rboxes": torch.zeros(0, 5), "scores": torch.zeros(0), "labels": torch.zeros(0)}
    per_class = {}
    for c, name in enumerate(class_names):
        cd, cg = [], []
        for img in images:
            d, a = dets.get(img, empty), annotations[img]
            dm, gm = d["labels"] == c, a["labels"] == c
            cd.append((d["rboxes"][dm], d["scores"][dm]))
            cg.append((a["rboxes"][gm], a["difficult"][gm].bool()))
        per_class[name] = eval_class(cd, cg, iou_thr, strict, mode)
    aps = [r["ap"] for r in per_class.values() if r["num_gts"] > 0]
    return {"mAP": float(np.mean(aps)) if aps else float("nan"),
            "AP": {k: r["ap"] for k, r in per_class.items()}, "per_class": per_class,
            "iou_thr": iou_thr, "strict": strict, "mode": mode}


# ----------------------------------------------------------------------------- submission
def write_dota_submission(dets: Dets, out_dir: str | Path,
                          class_names: tuple[str, ...] = DOTA_CLASSES) -> list[Path]:
    """Task 1 files: ``Task1_<class>.txt`` for every class (empty ones included, the server
    expects all), lines ``image score x1 y1 x2 y2 x3 y3 x4 y4`` in original-image pixels."""
    lines: list[list[str]] = [[] for _ in class_names]
    for image, d in dets.items():
        if d["rboxes"].shape[0] == 0:
            continue
        polys = rbox_to_poly(d["rboxes"].double()).reshape(-1, 8).tolist()
        for poly, s, c in zip(polys, d["scores"].tolist(), d["labels"].tolist()):
            if not 0 <= c < len(class_names):
                raise ValueError(f"{image}: label {c} outside the {len(class_names)} classes")
            lines[c].append(f"{image} {s:.6f} " + " ".join(f"{v:.2f}" for v in poly))
    paths = []
    for name, rows in zip(class_names, lines):
        paths.append(atomic_write_text(Path(out_dir) / f"Task1_{name}.txt",
                                       "".join(r + "\n" for r in rows)))
    return paths
