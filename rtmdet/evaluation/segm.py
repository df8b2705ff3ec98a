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

import argparse
import contextlib
import io
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from rtmdet.config import load_config
from rtmdet.data.loader import build_val_dataset
from rtmdet.data.preprocess import normalize
from rtmdet.geometry.masks import logits_to_masks
from rtmdet.models.weights import load_weights
from rtmdet.utils.io import atomic_save_figure, pyplot

from .coco import coco_evaluate, per_class_ap, to_coco_results


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
    """The per-image result converter of ``model`` for :func:`rtmdet.evaluation.coco.detect_dataset`."""
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

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann_file))
    anns = [a for a in gt.loadAnns(gt.getAnnIds(imgIds=[image_id])) if not a.get("iscrowd", 0)]
    info = gt.loadImgs([image_id])[0]
    masks = np.zeros((len(anns), info["height"], info["width"]), bool)
    for i, a in enumerate(anns):
        masks[i] = gt.annToMask(a) > 0
    return masks, [a["category_id"] for a in anns]


@torch.no_grad()
def plot_mask_predictions(model: torch.nn.Module, cfg, path: str | Path, num_images: int = 6,
                          score_thr: float = 0.3, cols: int = 3) -> Path:
    """Figure: predicted masks (filled), boxes and scores on val images, gt mask outlines in
    white — the qualitative half of the mask AP number."""
    plt = pyplot()

    dataset = build_val_dataset(cfg)
    source = dataset.source
    n = min(num_images, len(dataset))
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 4 * rows), dpi=100, squeeze=False)
    colours = plt.get_cmap("tab10")
    model.eval()
    for ax, i in zip(axes.flat, range(n)):
        item = dataset[i]
        det = model.predict(normalize(item["img"][None].float()), score_thr=cfg.eval.score_thr,
                            iou_thr=cfg.eval.iou_thr, max_per_img=cfg.eval.max_per_img,
                            nms_pre=cfg.eval.nms_pre)[0]
        keep = det["scores"] >= score_thr
        img = source.load(i)["img"][:, :, ::-1].astype(np.float32) / 255
        masks = logits_to_masks(det["mask_logits_lowres"][keep], int(model.strides[0]),
                                ori_shape=item["ori_shape"], scale=item["scale"]).numpy()
        for k, m in enumerate(masks):
            img[m] = 0.45 * img[m] + 0.55 * np.asarray(colours(int(det["labels"][keep][k]))[:3])
        ax.imshow(img)
        gt, _ = gt_masks_of_image(source.ann_file, item["image_id"])
        for g in gt:
            ax.contour(g, levels=[0.5], colors="white", linewidths=0.8)
        for box, score, label in zip(det["boxes"][keep] / item["scale"], det["scores"][keep],
                                     det["labels"][keep]):
            x1, y1, x2, y2 = box.tolist()
            c = colours(int(label))
            ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color=c, lw=1))
            ax.text(x1, y1, f"{source.classes[int(label)]} {score:.2f}", color="white",
                    fontsize=6, va="bottom", bbox={"facecolor": c, "pad": 1, "lw": 0})
        ax.set_title(f"image {item['image_id']}: {int(keep.sum())} masks, {len(gt)} gt",
                     fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle(f"{cfg.name}: predicted masks (score ≥ {score_thr}), gt outlines white",
                 fontsize=10)
    fig.tight_layout()
    return atomic_save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    """``python -m rtmdet.evaluation.segm CONFIG [overrides] --weights W --figure OUT.png``."""

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("config")
    p.add_argument("overrides", nargs="*")
    p.add_argument("--weights", required=True)
    p.add_argument("--figure", required=True)
    p.add_argument("--num-images", type=int, default=6)
    p.add_argument("--score-thr", type=float, default=0.3)
    args = p.parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    if cfg.model.type != "ins":
        raise SystemExit(f"error: {args.config} is model.type={cfg.model.type!r}, not ins")
    model, _ = load_weights(args.weights, cfg)
    print(f"wrote {plot_mask_predictions(model, cfg, args.figure, args.num_images, args.score_thr)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
