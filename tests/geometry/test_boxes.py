"""Priors, distance coder, IoU and NMS against hand-computed cases and a brute-force NMS."""
from __future__ import annotations

import pytest
import torch

from rtmdet.geometry import boxes as B


def test_priors_top_left_row_major():
    pts, strides = B.make_priors([(2, 3), (1, 2)], [8, 16])
    assert pts.tolist() == [[0, 0], [8, 0], [16, 0], [0, 8], [8, 8], [16, 8], [0, 0], [16, 0]]
    assert strides.tolist() == [8] * 6 + [16] * 2


def test_distance_roundtrip_and_clip():
    pts = torch.tensor([[10.0, 20.0]])
    d = torch.tensor([[5.0, 30.0, 4.0, 3.0]])
    assert B.distance2bbox(pts, d).tolist() == [[5.0, -10.0, 14.0, 23.0]]
    assert B.distance2bbox(pts, d, max_shape=(22, 12)).tolist() == [[5.0, 0.0, 12.0, 22.0]]
    assert torch.allclose(B.bbox2distance(pts, B.distance2bbox(pts, d)), d)


def test_box_iou_hand_computed():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [2.0, 2.0, 4.0, 4.0], [0.0, 0.0, 2.0, 2.0]])
    assert torch.allclose(B.box_iou(a, b), torch.tensor([[1 / 7, 0.0, 1.0]]))
    assert torch.allclose(B.box_iou(a.expand(3, 4), b, aligned=True), torch.tensor([1 / 7, 0.0, 1.0]))


def brute_force_nms(boxes, scores, labels, thr):
    """Reference: textbook greedy NMS per class, one pair at a time."""
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    kept: list[int] = []
    for i in order:
        if all(labels[j] != labels[i] or
               B.box_iou(boxes[i:i + 1], boxes[j:j + 1]).item() <= thr for j in kept):
            kept.append(i)
    return kept


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pure_nms_matches_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(300, 2, generator=g) * 100
    wh = torch.rand(300, 2, generator=g) * 40 + 1
    boxes = torch.cat([xy, xy + wh], 1)
    scores = torch.rand(300, generator=g)
    labels = torch.randint(0, 3, (300,), generator=g)
    keep = B.batched_nms(boxes, scores, labels, 0.5, use_torchvision=False)
    assert keep.tolist() == brute_force_nms(boxes, scores, labels, 0.5)


def test_nms_threshold_is_strict():
    boxes = torch.tensor([[0.0, 0, 10, 10], [0.0, 0, 10, 5]])  # IoU exactly 0.5
    scores = torch.tensor([0.9, 0.8])
    labels = torch.zeros(2, dtype=torch.long)
    assert B.batched_nms(boxes, scores, labels, 0.5, use_torchvision=False).tolist() == [0, 1]
    assert B.batched_nms(boxes, scores, labels, 0.49, use_torchvision=False).tolist() == [0]
    # a different class is never suppressed
    assert B.batched_nms(boxes, scores, torch.tensor([0, 1]), 0.1, use_torchvision=False).tolist() == [0, 1]


@pytest.mark.skipif(B._tv_ops is None, reason="torchvision (optional 'vision' extra) not installed")
def test_torchvision_and_pure_nms_agree():
    g = torch.Generator().manual_seed(3)
    xy = torch.rand(2000, 2, generator=g) * 300
    boxes = torch.cat([xy, xy + torch.rand(2000, 2, generator=g) * 80 + 1], 1)
    scores = torch.rand(2000, generator=g)
    labels = torch.randint(0, 10, (2000,), generator=g)
    assert torch.equal(B.batched_nms(boxes, scores, labels, 0.6, use_torchvision=True),
                       B.batched_nms(boxes, scores, labels, 0.6, use_torchvision=False))
