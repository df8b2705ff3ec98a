"""Rotated geometry against shapely (the independent reference) and hand-made cases."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from shapely.geometry import Polygon

from rtmdet.geometry.rotated import (batched_points_in_rboxes, points_in_rboxes, poly_to_rbox,
                                     rbox_to_poly, regularize_le90, wrap_angle)
from rtmdet.geometry.rotated_iou import batched_rbox_iou, rbox_iou, rbox_iou_loss
from rtmdet.geometry.rotated_nms import batched_rotated_nms, rotated_nms

torch.set_num_threads(1)


def _random_rboxes(n: int, seed: int, span: float = 20.0, size: float = 15.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.cat([torch.rand(n, 2, generator=g) * span, torch.rand(n, 2, generator=g) * size,
                      (torch.rand(n, 1, generator=g) - 0.5) * 2 * math.pi], 1).double()


def _shapely_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    pa, pb = rbox_to_poly(a).numpy(), rbox_to_poly(b).numpy()
    out = []
    for qa, qb in zip(pa, pb):
        pa_, pb_ = Polygon(qa), Polygon(qb)
        # Zero-area polygons are invalid for GEOS overlays; their intersection is empty.
        inter = pa_.intersection(pb_).area if pa_.area > 0 and pb_.area > 0 else 0.0
        union = pa_.area + pb_.area - inter
        out.append(inter / union if union > 1e-6 else 0.0)
    return torch.tensor(out, dtype=torch.float64)


def _special_pairs() -> tuple[torch.Tensor, torch.Tensor]:
    """Identical, nested, touching (shared edge / corner), zero-size and axis-parallel pairs."""
    base = _random_rboxes(200, 1)
    _t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    a, b = [], []
    for box in base:
        cx, cy, w, h, t = box.tolist()
        c, s = math.cos(t), math.sin(t)
        a += [box] * 7
        b += [box.clone(),                                                   # identical
              _t([cx, cy, w * 0.5, h * 0.3, t]),                   # nested
              _t([cx + w * c, cy + w * s, w, h, t]),               # shares an edge
              _t([cx + w * c - h * s, cy + w * s + h * c, w, h, t]),  # shares a corner
              _t([cx, cy, 0.0, 0.0, t]),                           # zero size
              _t([cx, cy, w * 2, 0.0, t + 0.3]),                   # zero height
              _t([cx + 0.5 * w * c, cy + 0.5 * w * s, w, h, t + math.pi])]  # parallel
    return torch.stack(a).double(), torch.stack(b).double()


def test_iou_matches_shapely_random_pairs():
    a, b = _random_rboxes(3000, 0), _random_rboxes(3000, 2)
    ref = _shapely_iou(a, b)
    assert (ref > 0).sum() > 500 and (ref == 0).sum() > 500      # both regimes exercised
    err64 = (rbox_iou(a, b, aligned=True) - ref).abs().max().item()
    err32 = (rbox_iou(a.float(), b.float(), aligned=True).double() - ref).abs().max().item()
    assert err64 <= 1e-6 and err32 <= 1e-4


def test_iou_matches_shapely_special_pairs():
    a, b = _special_pairs()
    ref = _shapely_iou(a, b)
    ours = rbox_iou(a, b, aligned=True)
    assert (ours - ref).abs().max().item() <= 1e-6
    assert (rbox_iou(a.float(), b.float(), aligned=True).double() - ref).abs().max() <= 1e-4
    assert torch.allclose(ours[0::7], torch.ones(200, dtype=torch.float64), atol=1e-9)
    assert torch.allclose(ours[1::7], torch.full((200,), 0.15, dtype=torch.float64), atol=1e-9)
    assert ours[2::7].abs().max() < 1e-6 and ours[3::7].abs().max() < 1e-6
    assert ours[4::7].max() < 1e-9 and ours[5::7].max() < 1e-9
    assert torch.allclose(ours[6::7], torch.full((200,), 1 / 3, dtype=torch.float64), atol=1e-6)


def test_iou_large_coordinates_float32():
    a = _random_rboxes(1000, 3, span=4000.0, size=40.0)
    b = a.clone()
    b[:, :2] += torch.randn(1000, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64) * 5
    b[:, 4] += 0.2
    ref = _shapely_iou(a, b)
    assert (rbox_iou(a.float(), b.float(), aligned=True).double() - ref).abs().max() <= 1e-4


def test_iou_near_identical_pairs_float32():
    """Nearly coincident edges: a corner or crossing accepted by the inside tolerance while just
    outside the other box used to add an edge-long sliver (1.5e-4 … 5e-4 IoU in float32)."""
    g = torch.Generator().manual_seed(8)
    n = 2000
    a = torch.cat([500 + 500 * torch.rand(n, 2, generator=g),          # centres, px
                   10 + 290 * torch.rand(n, 2, generator=g),           # sizes, px
                   (torch.rand(n, 1, generator=g) - 0.5) * math.pi], 1).double()
    scale = torch.tensor([1e-4] * 4 + [1e-7], dtype=torch.float64)
    delta = scale * 100 ** torch.rand(n, 5, generator=g, dtype=torch.float64)
    delta *= torch.randint(0, 2, (n, 5), generator=g) * 2 - 1        # random signs
    delta[torch.rand(n, 5, generator=g) < 0.2] = 0                  # some components exact
    b = a + delta
    ref = _shapely_iou(a, b)
    assert ref.min() > 0.99
    assert (rbox_iou(a, b, aligned=True) - ref).abs().max() <= 1e-9
    assert (rbox_iou(a.float(), b.float(), aligned=True).double() - ref).abs().max() <= 1e-4


def test_pairwise_equals_aligned_and_chunking():
    a, b = _random_rboxes(37, 5), _random_rboxes(23, 6)
    full = rbox_iou(a, b)
    small = rbox_iou(a, b, chunk_pairs=50)
    assert full.shape == (37, 23) and torch.equal(full, small)
    aa, bb = a[:, None].expand(-1, 23, -1).reshape(-1, 5), b[None].expand(37, -1, -1).reshape(-1, 5)
    assert torch.allclose(full.reshape(-1), _shapely_iou(aa, bb), atol=1e-6)


def test_iou_gradcheck_float64():
    a, b = _random_rboxes(40, 7, span=8.0), _random_rboxes(40, 8, span=8.0)
    a[:, 2:4] += 3.0   # generic overlapping configurations: kinks have measure zero
    overlapping = rbox_iou(a, b, aligned=True) > 0.05
    a, b = a[overlapping][:12].requires_grad_(), b[overlapping][:12].requires_grad_()
    assert a.shape[0] >= 8
    assert torch.autograd.gradcheck(lambda x, y: rbox_iou(x, y, aligned=True), (a, b),
                                    eps=1e-6, atol=1e-5)
    # The pairwise form (sparse over meeting circumcircles) carries gradients too.
    assert torch.autograd.gradcheck(lambda x, y: rbox_iou(x, y), (a[:5], b[:4]),
                                    eps=1e-6, atol=1e-5)


def test_loss_gradients_finite_on_degenerate_cases():
    a, b = _special_pairs()
    a, b = a.float().requires_grad_(), b.float().requires_grad_()
    loss = rbox_iou_loss(a, b)
    assert loss.min() >= 0 and loss.max() <= 1 - 1e-6 + 1e-7
    loss.sum().backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()


def test_le90_regularisation_keeps_the_rectangle():
    g = torch.Generator().manual_seed(9)
    boxes = torch.cat([torch.rand(500, 2, generator=g) * 100, (torch.rand(500, 2, generator=g) - 0.3) * 50,
                       (torch.rand(500, 1, generator=g) - 0.5) * 20], 1).double()
    reg = regularize_le90(boxes)
    assert (reg[:, 2] >= reg[:, 3]).all() and (reg[:, 3] >= 0).all()
    assert (reg[:, 4] >= -math.pi / 2).all() and (reg[:, 4] < math.pi / 2).all()
    valid = (boxes[:, 2].abs() > 1) & (boxes[:, 3].abs() > 1)
    iou = rbox_iou(boxes[valid], reg[valid], aligned=True)
    assert torch.allclose(iou, torch.ones_like(iou), atol=1e-9)
    assert torch.equal(regularize_le90(reg), reg)                 # idempotent
    assert torch.allclose(wrap_angle(torch.tensor([math.pi / 2, -math.pi / 2, 3.0])),
                          torch.tensor([-math.pi / 2, -math.pi / 2, 3.0 - math.pi]))


def test_hand_made_conversions():
    # A 4×2 box at (10, 20) rotated by 90°: its long side is vertical.
    poly = rbox_to_poly(torch.tensor([[10.0, 20.0, 4.0, 2.0, math.pi / 2]], dtype=torch.float64))
    assert torch.allclose(poly[0], torch.tensor([[11.0, 18], [11, 22], [9, 22], [9, 18]],
                                                dtype=torch.float64), atol=1e-12)
    # As given by the rectangle (2 wide, 4 tall, axis-aligned) its le90 form is w=4, h=2, θ=−π/2.
    reg = regularize_le90(torch.tensor([[10.0, 20.0, 2.0, 4.0, 0.0]]))
    assert torch.allclose(reg, torch.tensor([[10.0, 20.0, 4.0, 2.0, -math.pi / 2]]))


def test_min_area_rect_of_quadrilaterals():
    boxes = regularize_le90(_random_rboxes(300, 10, span=500, size=60) + torch.tensor(
        [0, 0, 5.0, 5.0, 0], dtype=torch.float64))
    polys = rbox_to_poly(boxes).numpy().reshape(-1, 8)
    back = poly_to_rbox(polys)
    assert (back[:, 2] >= back[:, 3]).all()
    assert rbox_iou(back, boxes, aligned=True).min() > 0.999      # cv2 works in float32
    # Rolling the vertex order or reversing it does not change the result.
    rolled = np.roll(polys.reshape(-1, 4, 2)[:, ::-1], 1, axis=1)
    assert torch.allclose(poly_to_rbox(rolled), back, atol=1e-3)


def test_points_in_rboxes():
    box = torch.tensor([[0.0, 0.0, 10.0, 2.0, math.pi / 4]])
    d = 1 / math.sqrt(2)
    pts = torch.tensor([[4 * d, 4 * d], [4 * d, -4 * d], [0.0, 0.0], [5 * d, 5 * d]])
    inside = points_in_rboxes(pts, box, shrink=0.01)[:, 0]
    assert inside.tolist() == [True, False, True, False]


def _reference_nms(boxes, scores, thr):
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    polys = [Polygon(p) for p in rbox_to_poly(boxes).numpy()]
    keep = []
    for i in order:
        ok = True
        for k in keep:
            inter = polys[i].intersection(polys[k]).area
            if inter / (polys[i].area + polys[k].area - inter) > thr:
                ok = False
                break
        if ok:
            keep.append(i)
    return keep


@pytest.mark.parametrize("thr", [0.1, 0.5])
def test_rotated_nms_matches_greedy_reference(thr):
    g = torch.Generator().manual_seed(11)
    boxes = _random_rboxes(300, 12, span=60.0, size=20.0)
    boxes[:, 2:4] += 2
    scores = torch.rand(300, generator=g, dtype=torch.float64)
    keep = rotated_nms(boxes, scores, thr)
    assert keep.tolist() == _reference_nms(boxes, scores.tolist(), thr)
    assert 10 < len(keep) < 290


def test_batched_rotated_nms_is_classwise():
    boxes = torch.tensor([[0, 0, 10, 5, 0.1], [0.5, 0, 10, 5, 0.1], [0, 0, 10, 5, 0.1]],
                         dtype=torch.float64)
    scores = torch.tensor([0.9, 0.8, 0.7], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1])
    assert batched_rotated_nms(boxes, scores, labels, 0.1).tolist() == [0, 2]
    assert batched_rotated_nms(boxes[:0], scores[:0], labels[:0], 0.1).numel() == 0


def test_batched_assigner_adapters():
    pred = torch.stack([_random_rboxes(30, 20), _random_rboxes(30, 21)])
    gt = torch.stack([_random_rboxes(4, 22), _random_rboxes(4, 23)])
    gt[1, 3] = 0                                                   # a padding row
    iou = batched_rbox_iou(pred, gt)
    assert iou.shape == (2, 30, 4) and (iou[1, :, 3] == 0).all()
    assert torch.equal(iou[0], rbox_iou(pred[0], gt[0]))
    pts = pred[0, :, :2]
    inside = batched_points_in_rboxes(pts, gt)
    assert inside.shape == (2, 30, 4) and not inside[1, :, 3].any()
    assert torch.equal(inside[1], points_in_rboxes(pts, gt[1], shrink=0.01))
