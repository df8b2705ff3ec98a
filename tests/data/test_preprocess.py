"""Test-time preprocessing: keep-ratio sizes, 114 padding, BGR normalisation."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import rtmdet
from rtmdet.data.preprocess import MEAN_BGR, STD_BGR, resize_keep_ratio


@pytest.mark.parametrize("hw,expected", [((375, 500), (480, 640)), ((640, 640), (640, 640)),
                                         ((1000, 333), (640, 213)), ((101, 50), (640, 317))])
def test_resize_keep_ratio_sizes(hw, expected):
    # int(x * f + 0.5): e.g. 333 * 0.64 = 213.12 -> 213, 50 * 6.3366 = 316.83 -> 317
    img = np.zeros((*hw, 3), np.uint8)
    out, scale = resize_keep_ratio(img, 640)
    assert out.shape[:2] == expected
    assert scale == pytest.approx(640 / max(hw))


def test_pad_value_and_channel_order():
    img = np.zeros((100, 200, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 10, 20, 30              # B, G, R
    x, meta = rtmdet.preprocess(img, size=64, return_meta=True)
    assert x.shape == (1, 3, 64, 64) and x.dtype == torch.float32
    assert meta[0]["img_shape"] == (32, 64) and meta[0]["ori_shape"] == (100, 200)
    for c, value in enumerate((10, 20, 30)):
        assert x[0, c, 0, 0].item() == pytest.approx((value - MEAN_BGR[c]) / STD_BGR[c])
        assert x[0, c, 63, 0].item() == pytest.approx((114 - MEAN_BGR[c]) / STD_BGR[c])


def test_batch_and_bad_input():
    imgs = [np.full((50, 80, 3), 7, np.uint8), np.full((90, 30, 3), 9, np.uint8)]
    assert rtmdet.preprocess(imgs, size=96).shape == (2, 3, 96, 96)
    with pytest.raises(ValueError, match="expected \\(H, W, 3\\) uint8"):
        rtmdet.preprocess(np.zeros((10, 10), np.float32))
