"""ATSS against hand-worked cases and a literal per-gt, per-level loop reference in float64;
batched == per image, padding and chunking."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rtmdet.assigners.atss import ATSSAssigner, prior_anchors
from tests.helpers.assigner_checks import (check_batched_and_reference, check_chunking_invariant,
                                    scalar_iou)

torch.set_num_threads(1)


def ref_atss(priors, boxes, gts, topk=9, scale=8.0):
    """The module docstring written out literally: loops, float64, numpy's stable sort."""
    p_count = len(priors)
    inds, ious = -np.ones(p_count, int), np.zeros(p_count)
    anchors = [(x - scale * s / 2, y - scale * s / 2, x + scale * s / 2, y + scale * s / 2)
               for x, y, s in priors]
    best = np.full(p_count, -1.0)
    for j, g in enumerate(gts):
        c = ((g[0] + g[2]) / 2, (g[1] + g[3]) / 2)
        cand = []
        for s in np.unique(priors[:, 2]):
            level = np.nonzero(priors[:, 2] == s)[0]
            d = [math.dist(priors[p, :2], c) for p in level]
            cand += list(level[np.argsort(d, kind="stable")[:topk]])
        a_iou = np.array([scalar_iou(anchors[p], g) for p in cand])
        thr = a_iou.mean() + (a_iou.std(ddof=1) if len(cand) > 1 else 0)
        for p, u in zip(cand, a_iou):
            inside = g[0] < priors[p, 0] < g[2] and g[1] < priors[p, 1] < g[3]
            if u >= thr and inside and u > best[p]:       # conflicts: highest anchor IoU
                best[p], inds[p], ious[p] = u, j, scalar_iou(boxes[p], g)
    return inds, ious


def test_prior_anchors():
    a = prior_anchors(torch.tensor([[16.0, 24, 8]]), 8.0)
    assert a.tolist() == [[-16, -8, 48, 56]]


def test_inside_filter_with_equal_ious():
    # Stride 8, anchors 64×64, gt [0,0,16,16] (centre (8,8)), topk 3. Every anchor below
    # contains the gt → IoU 256/4096 = .0625 for all, std 0, threshold .0625: all candidates
    # pass the IoU test and the centre-inside test alone decides.
    # Distances: p0 (8,8) 0, p3 (8,4) 4, p1 (16,8) 8, p2 (24,8) 16 → candidates p0, p3, p1.
    # p1 lies on the gt's right edge (not strictly inside) → positives p0, p3.
    priors = torch.tensor([[8.0, 8, 8], [16, 8, 8], [24, 8, 8], [8, 4, 8]], dtype=torch.float64)
    boxes = torch.tensor([[0.0, 0, 16, 16], [0, 0, 16, 8], [0, 0, 8, 8], [0, 0, 16, 8]],
                         dtype=torch.float64)
    gts = torch.tensor([[0.0, 0, 16, 16]], dtype=torch.float64)
    r = ATSSAssigner(topk=3).assign(torch.zeros(4, 3, dtype=torch.float64), priors, boxes, gts,
                                    torch.tensor([2]))
    assert r.gt_inds.tolist() == [0, -1, -1, 0]
    assert r.labels.tolist() == [2, -1, -1, 2]
    # The target is the *prediction's* IoU (as for DSLA), not the anchor's .0625.
    assert r.ious.tolist() == pytest.approx([1.0, 0, 0, 0.5], abs=1e-6)


def _two_level_case():
    # Anchors of side 1·stride. Level 10: a0 (10,10), a1 (20,10), a2 (15,5), a3 (50,50);
    # level 20: b0 (10,10), b1 (20,10), b2 (60,60). Gts (B first): B = [0,0,20,24] class 1,
    # A = [0,0,20,20] class 0. Predictions = the anchors, so target IoU = anchor IoU.
    priors = torch.tensor([[10, 10, 10], [20, 10, 10], [15, 5, 10], [50, 50, 10], [10, 10, 20],
                           [20, 10, 20], [60, 60, 20]], dtype=torch.float64)
    gts = torch.tensor([[0, 0, 20, 24], [0, 0, 20, 20]], dtype=torch.float64)
    return priors, prior_anchors(priors, 1.0), gts, torch.tensor([1, 0])


def test_threshold_per_level_topk_and_conflict():
    # A (centre (10,10)), topk 2 per level: level 10 → a0 (d 0), a2 (d 7.07) [a1: 10];
    # level 20 → b0 (0), b1 (10). Anchor IoUs .25, .25, 1, 1/3: mean .4583, std (n−1) .3632,
    # threshold .8216 → only b0.
    # B (centre (10,12)): a0 (2), a2 (8.6) [a1: 10.2]; b0 (2), b1 (10.2). IoUs 100/480 = .2083,
    # .2083, 400/480 = .8333, 200/680 = .2941: mean .3860, std .3009, threshold .6870 → b0.
    # Both want b0; A overlaps it more (1 > .8333) → A (index 1) although B comes first.
    priors, boxes, gts, labels = _two_level_case()
    logits = torch.zeros(7, 2, dtype=torch.float64)
    a = ATSSAssigner(topk=2, anchor_scale=1.0)
    r = a.assign(logits, priors, boxes, gts, labels)
    assert r.gt_inds.tolist() == [-1, -1, -1, -1, 1, -1, -1]
    assert r.labels.tolist() == [-1, -1, -1, -1, 0, -1, -1]
    assert r.ious[4].item() == pytest.approx(1.0)
    alone = a.assign(logits, priors, boxes, gts[:1], labels[:1])        # B without A
    assert alone.gt_inds.tolist() == [-1, -1, -1, -1, 0, -1, -1]
    assert alone.ious[4].item() == pytest.approx(400 / 480)
    ref_inds, _ = ref_atss(priors.numpy(), boxes.numpy(), gts.numpy(), topk=2, scale=1.0)
    assert ref_inds.tolist() == r.gt_inds.tolist()


@pytest.mark.parametrize("knobs", [{}, {"topk": 5}, {"anchor_scale": 4.0}])
def test_matches_reference_batched_and_per_image(knobs):
    check_batched_and_reference(ATSSAssigner(**knobs), lambda logits, priors, boxes, gts, labels:
                                ref_atss(priors, boxes, gts, topk=knobs.get("topk", 9),
                                         scale=knobs.get("anchor_scale", 8.0)))


def test_chunked_equals_unchunked():
    check_chunking_invariant(lambda chunk: ATSSAssigner(max_gts_per_chunk=chunk))


def test_gt_centers_move_the_candidates():
    # A far-away centre (a mask centre of mass elsewhere) makes the candidates priors outside
    # the gt, so nothing is positive.
    priors, boxes, gts, labels = _two_level_case()
    r = ATSSAssigner(topk=2, anchor_scale=1.0).assign(
        torch.zeros(7, 2, dtype=torch.float64), priors, boxes, gts[1:], labels[1:],
        gt_centers=torch.tensor([[55.0, 55]], dtype=torch.float64))
    assert (r.gt_inds == -1).all()


def test_no_gts_is_background():
    priors = torch.tensor([[10.0, 10, 10], [20, 20, 10]])
    r = ATSSAssigner().assign(torch.zeros(2, 3), priors, torch.zeros(2, 4), torch.zeros(0, 4),
                              torch.zeros(0, dtype=torch.long))
    assert r.gt_inds.tolist() == [-1, -1] and r.ious.tolist() == [0, 0]
