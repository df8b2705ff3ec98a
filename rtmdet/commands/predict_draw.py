"""The per-task part of ``rtmdet predict``: one image's detections as JSON records and drawn.

- RTMDet: ``box`` (x1, y1, x2, y2) in original pixels;
- RTMDet-Ins: plus ``mask``, a COCO compressed RLE (``size`` [h, w], ``counts``; decode with
  ``pycocotools.mask.decode``), decoded as the evaluation does (letterbox undone on the logits,
  then thresholded); drawn as a translucent fill with its outline;
- RTMDet-R: ``rbox`` (cx, cy, w, h, angle in radians, le90) and ``polygon`` (4 corners), plus the
  enclosing axis-aligned ``box``; drawn as the rotated rectangle.
Every record has ``score``, ``label`` and ``class_name``.
"""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch

from rtmdet.data.preprocess import preprocess
from rtmdet.evaluation.segm import encode_masks
from rtmdet.geometry.masks import logits_to_masks
from rtmdet.geometry.rotated import rbox_to_poly


def colour(label: int) -> tuple[int, int, int]:
    rng = np.random.default_rng(label)  # stable colour per class
    return tuple(int(c) for c in rng.integers(64, 256, 3))


def _name(label: int, class_names: list[str] | None) -> str:
    return class_names[label] if class_names and label < len(class_names) else str(label)


@torch.no_grad()
def predict_image(model: torch.nn.Module, img: np.ndarray, size: int, score_thr: float,
                  iou_thr: float, max_per_img: int, class_names: list[str] | None,
                  task: str = "det", dtype: str = "fp32") -> list[dict[str, Any]]:
    """Detections in original image pixels for one BGR uint8 image (``task``: det/ins/rotated;
    ``dtype``: the forward's precision, :meth:`rtmdet.models.detector.RTMDet.predict`; an
    onnxruntime detector has no parameters and takes the float32 CPU input as it is)."""
    x, meta = preprocess(img, size, return_meta=True)
    p = next(model.parameters(), None)
    x = x if p is None else x.to(p.device, p.dtype)
    res = model.predict(x, score_thr=score_thr, iou_thr=iou_thr, max_per_img=max_per_img,
                        img_shape=meta[0]["img_shape"], dtype=dtype)[0]
    h, w = img.shape[:2]
    scale = float(meta[0]["scale"])
    scores, labels = res["scores"].tolist(), res["labels"].tolist()
    records = [{"score": round(s, 5), "label": int(lb), "class_name": _name(int(lb), class_names)}
               for s, lb in zip(scores, labels)]
    if task == "rotated":
        rboxes = res["rboxes"].detach().cpu().double().clone()
        rboxes[:, :4] /= scale
        polys = rbox_to_poly(rboxes)
        for r, rb, poly in zip(records, rboxes.tolist(), polys.tolist()):
            xs, ys = [q[0] for q in poly], [q[1] for q in poly]
            r.update({"rbox": [round(v, 2) for v in rb[:4]] + [round(rb[4], 5)],
                      "polygon": [[round(a, 2), round(b, 2)] for a, b in poly],
                      "box": [round(max(min(xs), 0), 2), round(max(min(ys), 0), 2),
                              round(min(max(xs), w), 2), round(min(max(ys), h), 2)]})
        return records
    boxes = res["boxes"].detach().cpu().double() / scale
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
    for r, box in zip(records, boxes.tolist()):
        r["box"] = [round(v, 2) for v in box]
    if task == "ins" and records:
        masks = logits_to_masks(res["mask_logits_lowres"].detach().cpu().float(),
                                int(model.strides[0]), ori_shape=(h, w), scale=scale)
        for r, rle in zip(records, encode_masks(masks.numpy())):
            r["mask"] = {"size": [int(v) for v in rle["size"]], "counts": rle["counts"]}
    return records


def draw_detections(img: np.ndarray, dets: list[dict[str, Any]]) -> np.ndarray:
    """Masks (translucent fill + outline), rotated or axis-aligned boxes, and labels."""
    from pycocotools import mask as mask_utils
    out = img.copy()
    for d in dets:
        if "mask" in d:
            m = mask_utils.decode({"size": d["mask"]["size"],
                                   "counts": d["mask"]["counts"].encode("ascii")}).astype(bool)
            out[m] = (0.5 * out[m] + 0.5 * np.array(colour(d["label"]))).astype(np.uint8)
            contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL,
                                           cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(out, contours, -1, colour(d["label"]), 1, cv2.LINE_AA)
    for d in dets:
        c = colour(d["label"])
        if "polygon" in d:
            pts = np.round(np.array(d["polygon"])).astype(np.int32)
            cv2.polylines(out, [pts], True, c, 2, cv2.LINE_AA)
            x1, y1 = int(pts[:, 0].min()), int(pts[:, 1].min())
        else:
            x1, y1, x2, y2 = (int(round(v)) for v in d["box"])
            cv2.rectangle(out, (x1, y1), (x2, y2), c, 2)
        cv2.putText(out, f"{d['class_name']} {d['score']:.2f}", (x1, max(y1 - 4, 10)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, c, 1, cv2.LINE_AA)
    return out
