"""Exact rotated IoU (SPEC §10), batched and differentiable.

The IoU is exact: the intersection of two rectangles is a convex polygon whose vertices are the
corners of each box inside the other plus the pairwise edge crossings (at most 24 candidates).
Sorting the candidates by angle around their mean and applying the shoelace formula gives the
area with plain tensor ops, so it is batched and differentiable (the sort indices are constants
for autograd; the vertex coordinates carry the gradient), which the ``1 − IoU`` loss needs.
``tests/geometry/test_rotated.py`` checks it against shapely and with ``gradcheck``.
"""
from __future__ import annotations

import torch

from .rotated import rbox_area, rbox_to_poly


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


def rbox_iou_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Per-pair ``1 − IoU`` with IoU clamped ≥ ``eps`` (SPEC §10; weighting is the caller's)."""
    return 1 - rbox_iou(pred, target, aligned=True).clamp(min=eps)


