"""COCO mask AP for RTMDet-Ins: detections → RLE-encoded masks in original-image pixels.

``rtmdet eval`` calls this when ``model.type == "ins"``; the box AP is computed from the same
detections as for the detector, so the two numbers in eval.json always describe one run.

Masks are decoded as the official test path does: the stride-8 logits are upsampled to the
padded input canvas, resized by 1/scale to undo the letterbox, cropped to the original image,
and only then thresholded — thresholding before the resize would make the edges blocky. Each
segm result keeps its ``bbox`` too (as OpenMMLab's result files do), so the COCO API measures
a detection's area from its box, like the official evaluation.
"""
from __future__ import annotations

import contextlib
import io
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from pycocotools import mask as mask_utils

from .evaluate import coco_evaluate, per_class_ap, to_coco_results
from .masks import logits_to_masks


def encode_masks(masks: np.ndarray) -> list[dict[str, Any]]:
    """``(K, H, W)`` bool → COCO compressed RLEs with ``counts`` as str (JSON-serialisable)."""
    if masks.ndim != 3:
        raise ValueError(f"masks must be (K, H, W), got shape {masks.shape}")
    if masks.shape[0] == 0:
        return []
    rles = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    for rle in rles:
        rle["counts"] = rle["counts"].decode("ascii")
    return rles


def to_coco_segm_results(det: dict[str, torch.Tensor], meta: dict[str, Any], cat_ids: list[int],
                         mask_stride: int = 8, thr: float = 0.5, chunk: int = 32
                         ) -> list[dict[str, Any]]:
    """One image's Ins detections → COCO results with ``bbox`` and RLE ``segmentation``.

    ``det`` needs ``mask_logits_lowres`` (K, H/8, W/8) from ``RTMDetIns.predict``; ``meta`` the
    letterbox ``scale`` and ``ori_shape``. Masks are decoded ``chunk`` instances at a time so
    300 full-resolution float masks never sit in memory together.
    """
    results = to_coco_results(det, meta, cat_ids)
    logits = det["mask_logits_lowres"].detach().cpu().float()
    if logits.shape[0] != len(results):
        raise ValueError(f"{logits.shape[0]} mask logits for {len(results)} detections")
    for lo in range(0, len(results), chunk):
        masks = logits_to_masks(logits[lo:lo + chunk], mask_stride, thr=thr,
                                ori_shape=tuple(meta["ori_shape"]), scale=float(meta["scale"]))
        for r, rle in zip(results[lo:lo + chunk], encode_masks(masks.numpy())):
            r["segmentation"] = rle
    return results


def segm_results_fn(model: torch.nn.Module) -> Callable[..., list[dict[str, Any]]]:
    """The per-image result converter of ``model`` for :func:`rtmdet.evaluate.detect_dataset`."""
    return partial(to_coco_segm_results, mask_stride=int(model.strides[0]))


def strip_segm(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Box-only copies of the results (for the bbox evaluation and results.bbox.json)."""
    return [{k: v for k, v in r.items() if k != "segmentation"} for r in results]


def segm_report(ann_file: str | Path, results: list[dict[str, Any]], names: dict[int, str],
                backend: str = "auto") -> dict[str, Any]:
    """``segm_metrics`` (COCO stats) and ``segm_per_class`` for eval.json."""
    missing = sum("segmentation" not in r for r in results)
    if missing:
        raise ValueError(f"{missing} of {len(results)} results have no 'segmentation'")
    stats, precision, cat_ids = coco_evaluate(ann_file, results, "segm", backend)
    return {"segm_metrics": stats, "segm_per_class": per_class_ap(precision, cat_ids, names)}


def gt_masks_of_image(ann_file: str | Path, image_id: int) -> tuple[np.ndarray, list[int]]:
    """Ground-truth masks (G, H, W) bool and category ids of one image (non-crowd), for figures
    and tests; decoded by pycocotools like the evaluation does."""
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann_file))
    anns = [a for a in gt.loadAnns(gt.getAnnIds(imgIds=[image_id])) if not a.get("iscrowd", 0)]
    info = gt.loadImgs([image_id])[0]
    masks = np.zeros((len(anns), info["height"], info["width"]), bool)
    for i, a in enumerate(anns):
        masks[i] = gt.annToMask(a) > 0
    return masks, [a["category_id"] for a in anns]
