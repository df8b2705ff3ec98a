"""Rotated-box geometry for RTMDet-R (SPEC §10).

Boxes are ``(cx, cy, w, h, θ)`` with θ in radians, rotating the box's local x axis towards +y
(image coordinates, y down). The *long-edge-90* (le90) convention makes every rectangle have
one representation: ``w ≥ h`` and ``θ ∈ [−π/2, π/2)``. Ground truth is brought into it;
predictions are only angle-wrapped (as the official coder does), which is enough for IoU since
the geometry only depends on the corner polygon.

The IoU is exact: the intersection of two rectangles is a convex polygon whose vertices are the
corners of each box inside the other plus the pairwise edge crossings (at most 24 candidates).
Sorting the candidates by angle around their mean and applying the shoelace formula gives the
area with plain tensor ops, so it is batched and differentiable (the sort indices are constants
for autograd; the vertex coordinates carry the gradient), which the ``1 − IoU`` loss needs.
``tests/geometry/test_rotated.py`` checks it against shapely and with ``gradcheck``.
"""
from __future__ import annotations

import math

import numpy as np
import torch

_SIGNS_X = (-1.0, 1.0, 1.0, -1.0)
_SIGNS_Y = (-1.0, -1.0, 1.0, 1.0)


# ----------------------------------------------------------------------------- conventions
def wrap_angle(theta: torch.Tensor) -> torch.Tensor:
    """θ into [−π/2, π/2): a rectangle is unchanged by a half turn."""
    return torch.remainder(theta + math.pi / 2, math.pi) - math.pi / 2


def regularize_le90(rboxes: torch.Tensor) -> torch.Tensor:
    """Any ``(cx, cy, w, h, θ)`` (negative sizes allowed) → the le90 form of the same rectangle."""
    cx, cy, w, h, t = rboxes.unbind(-1)
    w, h = w.abs(), h.abs()
    swap = w < h
    w2, h2 = torch.where(swap, h, w), torch.where(swap, w, h)
    t = wrap_angle(torch.where(swap, t + math.pi / 2, t))
    return torch.stack([cx, cy, w2, h2, t], dim=-1)


def rbox_to_poly(rboxes: torch.Tensor) -> torch.Tensor:
    """``(..., 5)`` → ``(..., 4, 2)`` corners, in the order local (−,−), (+,−), (+,+), (−,+)."""
    cx, cy, w, h, t = rboxes.unbind(-1)
    c, s = torch.cos(t)[..., None], torch.sin(t)[..., None]
    sx = rboxes.new_tensor(_SIGNS_X) * (w / 2)[..., None]
    sy = rboxes.new_tensor(_SIGNS_Y) * (h / 2)[..., None]
    x = cx[..., None] + sx * c - sy * s
    y = cy[..., None] + sx * s + sy * c
    return torch.stack([x, y], dim=-1)


def poly_to_rbox(polys: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Quadrilaterals ``(N, 8)`` or ``(N, 4, 2)`` → le90 ``(N, 5)`` float64 via the minimum-area
    rectangle (DOTA annotations are not exact rectangles)."""
    import cv2

    pts = np.asarray(polys.detach().cpu() if isinstance(polys, torch.Tensor) else polys,
                     dtype=np.float32).reshape(-1, 4, 2)
    out = np.zeros((len(pts), 5), dtype=np.float64)
    for i, p in enumerate(pts):
        (cx, cy), (w, h), deg = cv2.minAreaRect(p)
        out[i] = (cx, cy, w, h, math.radians(deg))
    return regularize_le90(torch.from_numpy(out))


def rbox_area(rboxes: torch.Tensor) -> torch.Tensor:
    return rboxes[..., 2].abs() * rboxes[..., 3].abs()


def points_in_rboxes(points: torch.Tensor, rboxes: torch.Tensor, shrink: float = 0.0
                     ) -> torch.Tensor:
    """``(P, 2)`` points × ``(M, 5)`` boxes → ``(P, M)`` bool: strictly inside the box shrunk by
    ``shrink`` pixels on each side, tested in the box's own frame (the assigner's candidate
    test, SPEC §10 uses ``shrink=0.01``)."""
    u, v = _to_frame(points[:, None, :], rboxes[None])
    return ((u.abs() < rboxes[None, :, 2].abs() / 2 - shrink)
            & (v.abs() < rboxes[None, :, 3].abs() / 2 - shrink))


def _to_frame(points: torch.Tensor, rboxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinates of ``points`` (..., 2) in the local frame of broadcastable ``rboxes``."""
    dx = points[..., 0] - rboxes[..., 0]
    dy = points[..., 1] - rboxes[..., 1]
    c, s = torch.cos(rboxes[..., 4]), torch.sin(rboxes[..., 4])
    return dx * c + dy * s, -dx * s + dy * c


# ----------------------------------------------------------------------------- exact IoU
def _cross(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _snap_into(pts: torch.Tensor, box: torch.Tensor, c: torch.Tensor, s: torch.Tensor,
               tol: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Which of ``pts`` (..., K, 2) lie in ``box`` (..., 5) up to ``tol`` (..., 1) past each side,
    and the points snapped onto the box (moved along its axes by the overshoot; points inside
    are untouched). ``c``, ``s`` (..., 1) are the box's cos θ, sin θ, computed once by the caller.

    The tolerance is needed so that corners on a shared edge (identical or touching boxes) are
    not lost to rounding; without the snap, a corner accepted while up to the tolerance outside
    would add a sliver the length of a whole edge to the polygon — in float32 on near-identical
    boxes that cost up to ~4e-4 IoU. Snapped, it lies on the other box's edge line, collinear
    with the true vertices there, so the sliver's area vanishes to second order.
    """
    hw, hh = box[..., None, 2].abs() / 2, box[..., None, 3].abs() / 2
    dx, dy = pts[..., 0] - box[..., None, 0], pts[..., 1] - box[..., None, 1]
    u, v = dx * c + dy * s, dy * c - dx * s
    du, dv = torch.clamp(u, -hw, hw) - u, torch.clamp(v, -hh, hh) - v
    ok = (du.abs() <= tol) & (dv.abs() <= tol)
    # The snap displacement keeps its gradient (a snapped vertex follows the edge it sits on);
    # its direction's dependence on θ is of the order of ``tol`` and not worth its backward pass.
    c, s = c.detach(), s.detach()
    return ok, torch.stack([pts[..., 0] + du * c - dv * s, pts[..., 1] + du * s + dv * c], -1)


def _intersection_area(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Area of the intersection of broadcast-matching boxes ``(..., 5)``."""
    # Work relative to a's centre: float32 keeps ~7 digits, so coordinates of 1000s of pixels
    # would cost precision on small boxes.
    origin = a[..., :2]
    a = torch.cat([torch.zeros_like(origin), a[..., 2:]], -1)
    b = torch.cat([b[..., :2] - origin, b[..., 2:]], -1)
    f64 = a.dtype == torch.float64
    rel = 1e-9 if f64 else 1e-5
    ca, cb = rbox_to_poly(a), rbox_to_poly(b)                       # (..., 4, 2)

    # Edge i of a (p + t·d) against edge j of b (q + u·e), solved with 2-D cross products.
    p, d = ca[..., :, None, :], (ca.roll(-1, -2) - ca)[..., :, None, :]
    q, e = cb[..., None, :, :], (cb.roll(-1, -2) - cb)[..., None, :, :]
    denom = _cross(d, e)
    # Near-parallel edges have no well-defined crossing; where they overlap, the corners found
    # by the inside tests already span the shared segment. The cut-off is near each dtype's
    # rounding of ``denom``: a looser one in float64 drops real crossings of edges a few 1e-8
    # rad apart and costs ~1e-8 IoU on near-identical boxes.
    parallel = denom.abs() <= (1e-12 if f64 else 1e-7) * d.norm(dim=-1) * e.norm(dim=-1)
    safe = torch.where(parallel, torch.ones_like(denom), denom)
    t = _cross(q - p, e) / safe
    u = _cross(q - p, d) / safe
    crossing = ~parallel & (t >= -rel) & (t <= 1 + rel) & (u >= -rel) & (u <= 1 + rel)
    # Clamping t keeps a crossing accepted up to ``rel`` past a's corner on a's edge segment (in
    # a, so it needs no test against a); unclamped it would stick out of a like a stray corner.
    cross_pts = (p + t.clamp(0, 1)[..., None] * d).flatten(-3, -2)  # (..., 16, 2)

    ta, tb = a[..., 4:5], b[..., 4:5]
    cos_a, sin_a, cos_b, sin_b = torch.cos(ta), torch.sin(ta), torch.cos(tb), torch.sin(tb)
    tol_a = rel * (a[..., 2:3].abs() + a[..., 3:4].abs())
    tol_b = rel * (b[..., 2:3].abs() + b[..., 3:4].abs())
    # A true crossing lies on both boundaries; in float32 nearly collinear edges can yield a
    # spurious "crossing" elsewhere on a's edge line, which the test against b rejects (or, if
    # within the tolerance, snaps back onto b).
    in_b, snapped = _snap_into(torch.cat([ca, cross_pts], -2), b, cos_b, sin_b, tol_b)
    b_in_a, cb = _snap_into(cb, a, cos_a, sin_a, tol_a)
    pts = torch.cat([snapped, cb], -2)                               # (..., 24, 2)
    valid = torch.cat([in_b[..., :4], in_b[..., 4:] & crossing.flatten(-2), b_in_a], -1)
    n_valid = valid.sum(-1)
    w_valid = valid.to(pts.dtype)[..., None]
    centre = (pts * w_valid).sum(-2) / n_valid.clamp(min=1)[..., None].to(pts.dtype)
    rel_pts = pts - centre[..., None, :]
    angle = torch.atan2(rel_pts[..., 1], rel_pts[..., 0]).detach()
    angle = torch.where(valid, angle, torch.full_like(angle, float("inf")))
    order = angle.argsort(-1)
    ring = rel_pts.gather(-2, order[..., None].expand_as(rel_pts))
    ring_valid = valid.gather(-1, order)
    # Pad the ring with its first vertex: repeated vertices add zero area to the shoelace sum.
    ring = torch.where(ring_valid[..., None], ring, ring[..., :1, :])
    area = 0.5 * _cross(ring, ring.roll(-1, -2)).sum(-1)
    return torch.where(n_valid >= 3, area, torch.zeros_like(area)).clamp(min=0)


def rbox_iou(a: torch.Tensor, b: torch.Tensor, aligned: bool = False, eps: float = 1e-6,
             chunk_pairs: int = 1 << 16) -> torch.Tensor:
    """Exact rotated IoU: ``(N, M)`` for every pair, or ``(N,)`` for matching rows if
    ``aligned``. Pairs whose union is below ``eps`` (two empty boxes) get 0. The pairwise form
    only evaluates pairs whose circumscribed circles meet (the rest are exactly 0), in chunks of
    ``chunk_pairs`` pairs to bound memory (a few KiB per pair)."""
    if aligned:
        if a.shape != b.shape:
            raise ValueError(f"aligned rbox_iou needs equal shapes, got {a.shape} and {b.shape}")
        inter = _intersection_area(a, b)
        union = rbox_area(a) + rbox_area(b) - inter
        return (inter / union.clamp(min=eps)).clamp(0, 1)
    n, m = a.shape[0], b.shape[0]
    if n == 0 or m == 0:
        return a.new_zeros((n, m))
    ra = 0.5 * torch.hypot(a[:, 2], a[:, 3]).detach()
    rb = 0.5 * torch.hypot(b[:, 2], b[:, 3]).detach()
    dist = torch.cdist(a[:, :2].detach(), b[:, :2].detach(),
                       compute_mode="donot_use_mm_for_euclid_dist")
    ii, jj = torch.nonzero(dist <= ra[:, None] + rb[None, :] + 1e-6 * (1 + dist)).unbind(1)
    vals = [rbox_iou(a[ii[s:s + chunk_pairs]], b[jj[s:s + chunk_pairs]], aligned=True, eps=eps)
            for s in range(0, ii.numel(), chunk_pairs)]
    vals_t = torch.cat(vals) if vals else a.new_zeros(0)
    return a.new_zeros((n, m)).index_put((ii, jj), vals_t)


def batched_rbox_iou(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """``(B, P, 5)`` × ``(B, G, 5)`` → ``(B, P, G)``: the assigner's ``iou_fn`` for RTMDet-R."""
    if pred.shape[0] == 0:
        return pred.new_zeros((0, pred.shape[1], gt.shape[1]))
    return torch.stack([rbox_iou(p, g) for p, g in zip(pred, gt)])


def batched_points_in_rboxes(points: torch.Tensor, gt: torch.Tensor, shrink: float = 0.01
                             ) -> torch.Tensor:
    """``(P, 2)`` × ``(B, G, 5)`` → ``(B, P, G)``: the assigner's ``inside_fn`` for RTMDet-R."""
    u, v = _to_frame(points[None, :, None, :], gt[:, None])
    return ((u.abs() < gt[:, None, :, 2].abs() / 2 - shrink)
            & (v.abs() < gt[:, None, :, 3].abs() / 2 - shrink))


def rbox_iou_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Per-pair ``1 − IoU`` with IoU clamped ≥ ``eps`` (SPEC §10; weighting is the caller's)."""
    return 1 - rbox_iou(pred, target, aligned=True).clamp(min=eps)


# ----------------------------------------------------------------------------- NMS
def _candidate_pairs(boxes: torch.Tensor, block: int = 2048) -> torch.Tensor:
    """Index pairs (i < j) whose circumscribed circles meet: the only pairs with IoU > 0."""
    radius = 0.5 * torch.hypot(boxes[:, 2], boxes[:, 3])
    pairs = []
    for s in range(0, boxes.shape[0], block):
        d = torch.cdist(boxes[s:s + block, :2], boxes[:, :2],
                        compute_mode="donot_use_mm_for_euclid_dist")  # exact, not |a|²+|b|²−2ab
        near = d <= radius[s:s + block, None] + radius[None, :]
        idx = torch.nonzero(near)
        idx[:, 0] += s
        pairs.append(idx[idx[:, 0] < idx[:, 1]])
    return torch.cat(pairs) if pairs else boxes.new_zeros((0, 2), dtype=torch.long)


def rotated_nms(boxes: torch.Tensor, scores: torch.Tensor, iou_thr: float) -> torch.Tensor:
    """Exact greedy NMS for one class: a box is dropped when its IoU with a kept, higher-scored
    box is strictly greater than ``iou_thr``. Returns kept indices, highest score first.

    Only pairs whose circumscribed circles meet get an exact IoU, so merging thousands of patch
    detections per class stays cheap.
    """
    order = torch.sort(scores, descending=True, stable=True).indices
    b = boxes[order].detach().to("cpu", torch.float64)
    n = b.shape[0]
    pairs = _candidate_pairs(b)
    if pairs.numel():
        iou = rbox_iou(b[pairs[:, 0]], b[pairs[:, 1]], aligned=True)
        pairs = pairs[iou > iou_thr]
    pairs_np = pairs.numpy()
    starts = np.searchsorted(pairs_np[:, 0], np.arange(n + 1)) if len(pairs_np) else None
    removed = np.zeros(n, dtype=bool)
    keep = []
    for i in range(n):
        if removed[i]:
            continue
        keep.append(i)
        if starts is not None:
            removed[pairs_np[starts[i]:starts[i + 1], 1]] = True
    return order[torch.tensor(keep, dtype=torch.long, device=order.device)]


def batched_rotated_nms(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor,
                        iou_thr: float) -> torch.Tensor:
    """Class-wise rotated NMS; kept indices sorted by descending score."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    kept = []
    for c in torch.unique(labels):
        idx = torch.nonzero(labels == c).squeeze(1)
        kept.append(idx[rotated_nms(boxes[idx], scores[idx], iou_thr)])
    keep = torch.cat(kept)
    return keep[torch.sort(scores[keep], descending=True, stable=True).indices]
