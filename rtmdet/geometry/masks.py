"""Instance-mask maths of RTMDet-Ins (SPEC §9): dynamic convs, mask centroids, mask decoding.

Each detected (or, in training, positive) prior carries a 169-vector that parameterises a tiny
per-instance network of three 1×1 convs. That network runs on the shared stride-8 prototype
maps concatenated with the coordinates of every pixel *relative to the instance's prior*, so
one set of prototypes yields a different mask for every instance. These functions are pure
tensor maths, differentiable, and shared by inference and the mask loss.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .boxes import make_priors


def dynamic_param_counts(in_channels: int = 10, channels: int = 8, num_layers: int = 3
                         ) -> tuple[list[int], list[int]]:
    """Weight and bias counts per dynamic conv layer: (80, 64, 8) and (8, 8, 1) by default."""
    weights, biases = [], []
    for i in range(num_layers):
        c_in = in_channels if i == 0 else channels
        c_out = 1 if i == num_layers - 1 else channels
        weights.append(c_in * c_out)
        biases.append(c_out)
    return weights, biases


def parse_dynamic_params(kernels: torch.Tensor, in_channels: int = 10, channels: int = 8,
                         num_layers: int = 3) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Split ``(K, 169)`` kernels into per-layer grouped-conv weights ``(K·out, in, 1, 1)`` and
    biases ``(K·out,)``.

    The official layout stores every layer's weights first, then every layer's biases
    ([80 | 64 | 8 | 8 | 8 | 1]); each layer's weight block is (out, in) row-major.
    """
    w_counts, b_counts = dynamic_param_counts(in_channels, channels, num_layers)
    if kernels.shape[-1] != sum(w_counts) + sum(b_counts):
        raise ValueError(f"kernels have {kernels.shape[-1]} parameters, the dynamic convs need "
                         f"{sum(w_counts) + sum(b_counts)}")
    k = kernels.shape[0]
    parts = torch.split(kernels, w_counts + b_counts, dim=1)
    weights, biases = [], []
    for i in range(num_layers):
        c_out = b_counts[i]
        weights.append(parts[i].reshape(k * c_out, -1, 1, 1))
        biases.append(parts[num_layers + i].reshape(k * c_out))
    return weights, biases


def relative_coords(points: torch.Tensor, strides: torch.Tensor, size: tuple[int, int],
                    mask_stride: int = 8) -> torch.Tensor:
    """``(K, 2, H, W)``: (prior − grid point) / (prior stride · 8) for the stride-``mask_stride``
    grid of prior points (top-left cell corners, as the detection priors).

    Dividing by the instance's own stride makes the coordinates scale-aware: a stride-32 prior
    sees the same numeric range over its (larger) object as a stride-8 prior over a small one.
    """
    grid, _ = make_priors([size], [mask_stride], points.device, points.dtype)   # (HW, 2)
    rel = (points[:, None, :] - grid[None]) / (strides[:, None, None] * 8)      # (K, HW, 2)
    return rel.permute(0, 2, 1).reshape(points.shape[0], 2, size[0], size[1])


def dynamic_mask_logits(mask_feat: torch.Tensor, kernels: torch.Tensor, points: torch.Tensor,
                        strides: torch.Tensor, mask_stride: int = 8, channels: int = 8,
                        num_layers: int = 3) -> torch.Tensor:
    """Mask logits ``(K, H, W)`` at the prototype resolution for one image.

    ``mask_feat`` (C, H, W) prototypes of that image; ``kernels`` (K, 169); ``points`` (K, 2)
    and ``strides`` (K,) the priors the kernels were predicted at. All K instances run as one
    grouped conv (groups = K).
    """
    k = kernels.shape[0]
    h, w = mask_feat.shape[-2:]
    if k == 0:
        return mask_feat.new_zeros((0, h, w))
    rel = relative_coords(points, strides, (h, w), mask_stride)
    x = torch.cat([rel, mask_feat[None].expand(k, -1, -1, -1)], dim=1)   # (K, 2 + C, H, W)
    weights, biases = parse_dynamic_params(kernels, x.shape[1], channels, num_layers)
    x = x.reshape(1, -1, h, w)
    for i, (weight, bias) in enumerate(zip(weights, biases)):
        x = F.conv2d(x, weight, bias, groups=k)
        if i < num_layers - 1:
            x = F.relu(x)
    return x.reshape(k, h, w)


def upsample_mask_logits(logits: torch.Tensor, scale: int) -> torch.Tensor:
    """Bilinear ×``scale`` (align_corners False) of ``(K, H, W)`` logits, as the official test
    path does before thresholding: interpolating logits, not binary masks, keeps edges smooth."""
    if logits.shape[0] == 0:
        return logits.new_zeros((0, logits.shape[1] * scale, logits.shape[2] * scale))
    return F.interpolate(logits[None], scale_factor=scale, mode="bilinear",
                         align_corners=False)[0]


def mask_centroids(masks: torch.Tensor, fallback: torch.Tensor | None = None,
                   eps: float = 1e-7) -> torch.Tensor:
    """Centre of mass ``(G, 2)`` as (x, y) of ``(G, H, W)`` masks (bool or weights).

    RTMDet-Ins measures the assigner's centre cost from here instead of the box centre, which
    for non-convex objects may lie off the object. Coordinates are pixel indices (pixel (i, j)
    counts at (j, i), as the official ``center_of_mass``), i.e. in the same frame as the
    top-left-corner priors. An empty mask has no centre: it gets the matching row of
    ``fallback`` (G, 2) when given (e.g. its box centre), else (0, 0) like the official code.
    """
    if masks.dim() != 3:
        raise ValueError(f"masks must be (G, H, W), got shape {tuple(masks.shape)}")
    g, h, w = masks.shape
    dtype = fallback.dtype if fallback is not None else torch.float32
    m = masks.to(dtype if dtype.is_floating_point else torch.float32)
    total = m.sum(dim=(1, 2))
    ys = torch.arange(h, device=m.device, dtype=m.dtype)
    xs = torch.arange(w, device=m.device, dtype=m.dtype)
    cx = (m.sum(dim=1) * xs).sum(dim=1) / total.clamp(min=eps)
    cy = (m.sum(dim=2) * ys).sum(dim=1) / total.clamp(min=eps)
    centres = torch.stack([cx, cy], dim=1)
    if fallback is not None:
        if fallback.shape != (g, 2):
            raise ValueError(f"fallback must be ({g}, 2), got {tuple(fallback.shape)}")
        centres = torch.where((total > 0)[:, None], centres, fallback.to(centres))
    return centres


def logits_to_masks(logits: torch.Tensor, stride: int, crop: tuple[int, int] | None = None,
                    thr: float = 0.5, ori_shape: tuple[int, int] | None = None,
                    scale: float | None = None) -> torch.Tensor:
    """Binary masks from stride-``stride`` logits ``(K, h, w)``, as the official test path.

    The logits are upsampled ×``stride`` to the input canvas. For a letterboxed input
    (resized by ``scale`` = resized/original, padded bottom/right) pass ``ori_shape``: the whole
    canvas is resized by 1/``scale`` (size rounded up) and cropped to the original image,
    logits still, and only then thresholded (sigmoid > ``thr``). Otherwise the canvas is cropped
    to ``crop`` = (H, W) when given.
    """
    up = upsample_mask_logits(logits, stride)
    if ori_shape is not None:
        if scale is None or scale <= 0:
            raise ValueError("ori_shape needs the positive resize scale of the letterbox")
        size = [math.ceil(up.shape[-2] / scale), math.ceil(up.shape[-1] / scale)]
        if up.shape[0]:
            up = F.interpolate(up[None], size=size, mode="bilinear", align_corners=False)[0]
        else:
            up = up.new_zeros((0, *size))
        up = up[:, :ori_shape[0], :ori_shape[1]]
    elif crop is not None:
        up = up[:, :crop[0], :crop[1]]
    return up.sigmoid() > thr
