"""COCO-format detection / instance-segmentation dataset.

The annotation file is parsed once by pycocotools (so evaluation can reuse the very same
``COCO`` object) and turned into compact per-image records: xyxy boxes, contiguous labels and,
when asked, polygons. Masks stay *polygons* through augmentation (exact under scaling, flipping,
shifting and clipping, and tiny compared with 1280×1280 bitmaps inside a Mosaic) and are
rasterised only at the end. Non-crowd RLE masks (rare in COCO) are traced into polygons.
Crowd regions are never training targets, as in the official recipe.
"""
from __future__ import annotations

import contextlib
import io
import logging
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from .bad_input import BadInput

log = logging.getLogger("rtmdet.data")


def truncated(data: bytes) -> bool:
    """A JPEG without its end-of-image marker or a PNG without its IEND chunk: the file was cut
    (interrupted copy or download). OpenCV decodes such a JPEG anyway, the missing rows grey,
    and says so only on libjpeg's stderr, so training would learn from the grey."""
    if data[:2] == b"\xff\xd8":
        return b"\xff\xd9" not in data[-1024:]
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return b"IEND" not in data[-64:]
    return False


def read_image(path: Path, bad: BadInput) -> np.ndarray | None:
    """BGR uint8 image, or None (after reporting to ``bad``) when missing, truncated or
    unreadable."""
    try:
        data = path.read_bytes()
    except OSError:
        bad("missing image file" if not path.exists() else "unreadable or corrupt image", str(path))
        return None
    if truncated(data):
        bad("truncated image", str(path), f"{len(data)} bytes")
        return None
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if img is None:
        bad("unreadable or corrupt image", str(path))
    return img


def rle_to_polygons(rle: dict, h: int, w: int) -> list[np.ndarray]:
    m = mask_utils.decode(mask_utils.frPyObjects(rle, h, w) if isinstance(rle.get("counts"), list)
                          else rle)
    contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1, 2).astype(np.float32) for c in contours if len(c) >= 3]


class CocoDataset:
    """Images and targets of one COCO annotation file.

    ``cat_ids[label]`` is the COCO category id of contiguous label ``label``; ``coco`` is the
    pycocotools object and ``ann_file`` its path, both for evaluation. With ``train`` images
    without usable boxes (``filter_empty``) or with a side below ``min_img_size`` are left out.
    ``load(i)`` returns a sample dict (``img`` HWC BGR uint8, ``boxes`` (N, 4) xyxy float32,
    ``labels`` (N,) int64, ``masks`` list of per-instance polygon lists when ``with_masks``,
    ``image_id``) or None when the image is bad and the policy is ``skip``.
    """

    def __init__(self, ann_file: str | Path, img_dir: str | Path, train: bool = True,
                 filter_empty: bool = True, min_img_size: int = 32, with_masks: bool = False,
                 bad: BadInput | None = None) -> None:
        self.ann_file = Path(ann_file)
        self.img_dir = Path(img_dir)
        self.with_masks = with_masks
        self.bad = bad or BadInput("skip")
        if not self.ann_file.is_file():
            raise FileNotFoundError(f"{self.ann_file}: annotation file not found")
        if not self.img_dir.is_dir():
            raise FileNotFoundError(f"{self.img_dir}: image folder not found")
        with contextlib.redirect_stdout(io.StringIO()):    # pycocotools prints progress
            try:
                self.coco = COCO(str(self.ann_file))
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"{self.ann_file}: not a COCO annotation file ({e})") from None
        self.cat_ids: list[int] = sorted(self.coco.getCatIds())
        self.cat2label = {cid: i for i, cid in enumerate(self.cat_ids)}
        self.classes = [self.coco.cats[c]["name"] for c in self.cat_ids]
        self.records: list[dict[str, Any]] = []
        dropped = 0
        for image_id in sorted(self.coco.getImgIds()):
            rec = self._record(image_id)
            if train and (min(rec["height"], rec["width"]) < min_img_size
                          or (filter_empty and len(rec["labels"]) == 0)):
                dropped += 1
                continue
            self.records.append(rec)
        self.ids = [r["image_id"] for r in self.records]
        log.info("%s: %d images (%d filtered), %s", self.ann_file.name, len(self.records),
                 dropped, self.bad.summary())

    def _record(self, image_id: int) -> dict[str, Any]:
        info = self.coco.imgs[image_id]
        h, w = int(info["height"]), int(info["width"])
        where = f"{self.ann_file}: image {image_id}"
        boxes, labels, polys = [], [], []
        for ann in self.coco.imgToAnns.get(image_id, []):
            if ann.get("iscrowd", 0):
                continue
            if ann.get("category_id") not in self.cat2label:
                self.bad("unknown category id", f"{where} annotation {ann.get('id')}",
                         f"category_id={ann.get('category_id')}")
                continue
            bbox = ann.get("bbox")
            if not isinstance(bbox, list) or len(bbox) != 4:
                self.bad("malformed bbox", f"{where} annotation {ann.get('id')}", repr(bbox))
                continue
            try:
                x, y, bw, bh = (float(v) for v in bbox)
            except (TypeError, ValueError):
                self.bad("malformed bbox", f"{where} annotation {ann.get('id')}", repr(bbox))
                continue
            if not all(math.isfinite(v) for v in (x, y, bw, bh)):
                self.bad("non-finite bbox coordinate", f"{where} annotation {ann.get('id')}",
                         f"bbox={bbox}")
                continue
            if bw < 1 or bh < 1:
                self.bad("zero, negative or sub-pixel box size", f"{where} annotation {ann['id']}",
                         f"bbox={bbox}")
                continue
            x1, y1, x2, y2 = max(x, 0.0), max(y, 0.0), min(x + bw, w), min(y + bh, h)
            if x2 <= x1 or y2 <= y1:
                self.bad("box outside the image", f"{where} annotation {ann['id']}", f"bbox={bbox}")
                continue
            boxes.append((x1, y1, x2, y2))
            labels.append(self.cat2label[ann["category_id"]])
            if self.with_masks:
                polys.append(self._polygons(ann, h, w, (x1, y1, x2, y2)))
        return {"image_id": image_id, "file": info["file_name"], "height": h, "width": w,
                "boxes": np.asarray(boxes, np.float32).reshape(-1, 4),
                "labels": np.asarray(labels, np.int64), "masks": polys}

    @staticmethod
    def _polygons(ann: dict, h: int, w: int, box: tuple[float, ...]) -> list[np.ndarray]:
        seg = ann.get("segmentation")
        if isinstance(seg, dict):
            out = rle_to_polygons(seg, h, w)
        elif isinstance(seg, list):
            out = [np.asarray(p, np.float32).reshape(-1, 2) for p in seg if len(p) >= 6]
        else:
            out = []
        if not out:                          # no usable mask: fall back to the box outline
            x1, y1, x2, y2 = box
            out = [np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float32)]
        return out

    def __len__(self) -> int:
        return len(self.records)

    def image_path(self, i: int) -> Path:
        return self.img_dir / self.records[i]["file"]

    def load(self, i: int) -> dict[str, Any] | None:
        rec = self.records[i]
        path = self.image_path(i)
        img = read_image(path, self.bad)
        if img is None:
            return None
        if img.shape[:2] != (rec["height"], rec["width"]):
            self.bad("image size differs from the annotation file", str(path),
                     f"file {img.shape[1]}x{img.shape[0]}, json {rec['width']}x{rec['height']}")
            return None
        sample = {"img": img, "boxes": rec["boxes"].copy(), "labels": rec["labels"].copy(),
                  "image_id": rec["image_id"]}
        if self.with_masks:
            sample["masks"] = [[p.copy() for p in m] for m in rec["masks"]]
        return sample
