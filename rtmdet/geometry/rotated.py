"""Rotated boxes for RTMDet-R (SPEC §10): the le90 convention, quad → box, point-in-box tests
and the rotated distance coder.

Boxes are ``(cx, cy, w, h, θ)`` with θ in radians, rotating the box's local x axis towards +y
(image coordinates, y down). The *long-edge-90* (le90) convention makes every rectangle have
one representation: ``w ≥ h`` and ``θ ∈ [−π/2, π/2)``. Ground truth is brought into it;
predictions are only angle-wrapped (as the official coder does), which is enough for IoU since
the geometry only depends on the corner polygon. Exact IoU: :mod:`.rotated_iou`; NMS:
:mod:`.rotated_nms`.
"""
from __future__ import annotations

import math

import cv2
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


def batched_points_in_rboxes(points: torch.Tensor, gt: torch.Tensor, shrink: float = 0.01
                             ) -> torch.Tensor:
    """``(P, 2)`` × ``(B, G, 5)`` → ``(B, P, G)``: the assigner's ``inside_fn`` for RTMDet-R."""
    u, v = _to_frame(points[None, :, None, :], gt[:, None])
    return ((u.abs() < gt[:, None, :, 2].abs() / 2 - shrink)
            & (v.abs() < gt[:, None, :, 3].abs() / 2 - shrink))


# ----------------------------------------------------------------------------- coder
def distance2rbox(points: torch.Tensor, distances: torch.Tensor, angles: torch.Tensor
                  ) -> torch.Tensor:
    """Decode ``(..., 2)`` points, ``(..., 4)`` distances and ``(...,)`` or ``(..., 1)`` angles
    into ``(..., 5)`` rotated boxes.

    The distances are to the sides of the box in its own frame, so the box centre is the point
    moved by the rotated half-difference of opposite distances. Sizes are not reordered (a
    prediction need not satisfy w ≥ h); only θ is wrapped into [−π/2, π/2), which leaves the
    rectangle unchanged. No clipping: rotated boxes may legitimately leave the canvas.
    """
    if angles.dim() == distances.dim():
        angles = angles[..., 0]
    l, t, r, b = distances.unbind(-1)
    dx, dy = (r - l) / 2, (b - t) / 2
    c, s = torch.cos(angles), torch.sin(angles)
    cx = points[..., 0] + dx * c - dy * s
    cy = points[..., 1] + dx * s + dy * c
    return torch.stack([cx, cy, l + r, t + b, wrap_angle(angles)], dim=-1)
