"""Shared pieces of the assigner tests: a scalar IoU and a random padded batch for the float64
loop references, the dynamic-k matching step the DSLA and SimOTA references share, and the two
checks every assigner must pass (batched == per image == loop reference; chunking invariant)."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from rtmdet.geometry.boxes import make_priors


def scalar_iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / max(union, 1e-6)


def random_batch(seed, b=3, g=6, c=4, size=128):
    """Priors of two levels, padded gts (counts g, g−2, 0) and noisy gt copies as predictions."""
    gen = torch.Generator().manual_seed(seed)
    points, strides = make_priors([(size // 8, size // 8), (size // 16, size // 16)], [8, 16],
                                  dtype=torch.float64)
    priors = torch.cat([points, strides[:, None]], 1)
    p = priors.shape[0]
    xy = torch.rand(b, g, 2, generator=gen, dtype=torch.float64) * size * 0.7
    wh = 8 + torch.rand(b, g, 2, generator=gen, dtype=torch.float64) * size * 0.5
    gts = torch.cat([xy, xy + wh], -1)
    labels = torch.randint(0, c, (b, g), generator=gen)
    # Predictions: noisy copies of gt boxes so IoUs span (0, 1).
    src = gts[:, torch.randint(0, g, (p,), generator=gen)]
    boxes = src + torch.randn(b, p, 4, generator=gen, dtype=torch.float64) * 6
    logits = torch.randn(b, p, c, generator=gen, dtype=torch.float64)
    counts = [g, g - 2, 0][:b]
    valid = torch.arange(g)[None] < torch.tensor(counts)[:, None]
    return logits, priors, boxes, gts, labels, valid, counts


def reference_match(logits, boxes, gts, cand: list[int], topk: int,
                    pair_cost: Callable[[int, int, np.ndarray, float, np.ndarray], float]
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The loop every literal reference assigner shares: for each candidate prior ``p`` and gt
    ``j`` the IoU ``u`` of the prediction with the gt and ``pair_cost(p, j, g, u, σ(logits[p]))``,
    then :func:`dynamic_k_match`. Returns per-prior matched gt (−1: background) and IoU."""
    p_count = logits.shape[0]
    inds, ious = -np.ones(p_count, int), np.zeros(p_count)
    if not cand or len(gts) == 0:
        return inds, ious
    cost, iou = np.zeros((len(cand), len(gts))), np.zeros((len(cand), len(gts)))
    sig = 1 / (1 + np.exp(-logits))
    for i, p in enumerate(cand):
        for j, g in enumerate(gts):
            u = iou[i, j] = scalar_iou(boxes[p], g)
            cost[i, j] = pair_cost(p, j, g, u, sig[p])
    return dynamic_k_match(cost, iou, cand, topk, inds, ious)


def dynamic_k_match(cost: np.ndarray, iou: np.ndarray, cand: list[int], topk: int,
                    inds: np.ndarray, ious: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each gt takes its k = max(1, int(Σ top-``topk`` candidate IoUs)) cheapest candidates; a
    prior taken by several gts keeps the cheapest. Fills ``inds``/``ious`` (per prior)."""
    match = np.zeros_like(cost, bool)
    for j in range(cost.shape[1]):
        k = max(1, int(np.sort(iou[:, j])[::-1][:min(topk, len(cand))].sum()))
        match[np.argsort(cost[:, j], kind="stable")[:k], j] = True
    for i, p in enumerate(cand):
        js = np.nonzero(match[i])[0]
        if len(js):
            j = js[np.argmin(cost[i, js])]
            inds[p], ious[p] = j, iou[i, j]
    return inds, ious


def check_batched_and_reference(assigner, reference: Callable) -> None:
    """``assigner`` on a padded batch equals it per image, and per image equals ``reference``
    (called with float64 numpy ``logits, priors, boxes, gts`` and a label list); labels follow
    the matched gt and the image without gts is all background."""
    logits, priors, boxes, gts, labels, valid, counts = random_batch(1)
    batched = assigner.assign(logits, priors, boxes, gts, labels, valid)
    assert batched.pos_mask.sum() > 5
    for i, n in enumerate(counts):
        single = assigner.assign(logits[i], priors, boxes[i], gts[i, :n], labels[i, :n])
        assert torch.equal(single.gt_inds, batched.gt_inds[i])
        assert torch.equal(single.ious, batched.ious[i])
        ref_inds, ref_ious = reference(logits[i].numpy(), priors.numpy(), boxes[i].numpy(),
                                       gts[i, :n].numpy(), labels[i, :n].tolist())
        assert single.gt_inds.tolist() == ref_inds.tolist()
        assert single.ious.numpy() == pytest.approx(ref_ious, abs=1e-6)
        pos = single.gt_inds >= 0
        assert torch.equal(single.labels[pos], labels[i, single.gt_inds[pos]])
    assert (batched.gt_inds[2] == -1).all()        # image without gts is all background


def check_chunking_invariant(make: Callable) -> None:
    """``make(max_gts_per_chunk)`` assigners give the same result for chunks 1, 2, 4 as 256."""
    logits, priors, boxes, gts, labels, valid, _ = random_batch(2, g=9)
    full = make(256).assign(logits, priors, boxes, gts, labels, valid)
    for chunk in (1, 2, 4):
        part = make(chunk).assign(logits, priors, boxes, gts, labels, valid)
        assert torch.equal(part.gt_inds, full.gt_inds)
        assert torch.equal(part.ious, full.ious)
