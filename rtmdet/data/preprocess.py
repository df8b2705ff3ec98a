"""Test-time input preparation (SPEC §4): keep-ratio resize, pad with 114, normalise in BGR."""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch

MEAN_BGR = (103.53, 116.28, 123.675)
STD_BGR = (57.375, 57.12, 58.395)
PAD_VALUE = 114


def resize_keep_ratio(img: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """Resize so the long side is ``size`` (each side ``int(x·f + 0.5)``, bilinear)."""
    h, w = img.shape[:2]
    scale = size / max(h, w)
    new_w, new_h = int(w * scale + 0.5), int(h * scale + 0.5)
    if (new_w, new_h) != (w, h):
        img = cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    return img, scale


def preprocess(images_bgr_uint8: np.ndarray | Sequence[np.ndarray], size: int = 640,
               return_meta: bool = False):
    """BGR uint8 image(s) (H, W, 3) → normalised batch ``(N, 3, size, size)`` float32.

    With ``return_meta`` also returns, per image, ``scale`` (multiply predicted boxes by
    ``1/scale`` to get original pixels) and ``img_shape`` = the resized (H, W) before padding.
    """
    if isinstance(images_bgr_uint8, np.ndarray) and images_bgr_uint8.ndim == 3:
        images_bgr_uint8 = [images_bgr_uint8]
    batch = np.full((len(images_bgr_uint8), size, size, 3), PAD_VALUE, dtype=np.uint8)
    meta = []
    for i, img in enumerate(images_bgr_uint8):
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f"image {i}: expected (H, W, 3) uint8 BGR, got {img.shape} {img.dtype}")
        resized, scale = resize_keep_ratio(img, size)
        h, w = resized.shape[:2]
        batch[i, :h, :w] = resized
        meta.append({"scale": scale, "img_shape": (h, w), "ori_shape": img.shape[:2]})
    x = normalize(torch.from_numpy(batch).permute(0, 3, 1, 2))
    return (x, meta) if return_meta else x


def normalize(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 BGR batch (N, 3, H, W) → float32 normalised. Data loaders hand over uint8 (4× less
    to copy to the device); normalisation happens on the device."""
    mean = torch.tensor(MEAN_BGR, device=images_uint8.device).view(1, 3, 1, 1)
    std = torch.tensor(STD_BGR, device=images_uint8.device).view(1, 3, 1, 1)
    return (images_uint8.float() - mean) / std
