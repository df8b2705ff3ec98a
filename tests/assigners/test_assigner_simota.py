"""SimOTA (YOLOX) against a hand-worked case and a literal per-prior, per-gt loop reference in
float64; batched == per image, padding and chunking."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rtmdet.assigners.simota import SimOTAAssigner, onehot_bce_cost
from tests.helpers.assigner_checks import (check_batched_and_reference, check_chunking_invariant,
                                    reference_match)

torch.set_num_threads(1)


def ref_simota(logits, priors, boxes, gts, labels, radius=2.5, topk=10, iou_w=3.0, cls_w=1.0):
    """The module docstring written out literally: Python loops, float64."""
    p_count, c_count = logits.shape

    def in_box(p, g):
        return g[0] < priors[p, 0] < g[2] and g[1] < priors[p, 1] < g[3]

    def in_ctr(p, g):
        cx, cy, r = (g[0] + g[2]) / 2, (g[1] + g[3]) / 2, radius * priors[p, 2]
        return abs(priors[p, 0] - cx) < r and abs(priors[p, 1] - cy) < r

    cand = [p for p in range(p_count) if any(in_box(p, g) or in_ctr(p, g) for g in gts)]

    def pair_cost(p, j, g, u, sig):
        y = np.zeros(c_count)
        y[labels[j]] = 1.0
        bce = -np.sum(y * np.log(sig) + (1 - y) * np.log(1 - sig))
        return (cls_w * bce - iou_w * np.log(u + 1e-8)
                + 1e5 * (not (in_box(p, g) and in_ctr(p, g))))
    return reference_match(logits, boxes, gts, cand, topk, pair_cost)


def test_onehot_bce_cost_by_hand():
    # logits (0.1, 0.3, 0.6), class 2: −log(1−σ(.1)) − log(1−σ(.3)) − log σ(.6)
    # = softplus(.1) + softplus(.3) + softplus(−.6) = .744397 + .854355 + .437488 = 2.036240.
    logits = torch.tensor([[[0.1, 0.3, 0.6]]], dtype=torch.float64)
    c = onehot_bce_cost(logits, torch.tensor([[2]]))
    assert c.item() == pytest.approx(2.036240, abs=1e-6)
    bce = F.binary_cross_entropy(logits.sigmoid(), torch.tensor([[[0.0, 0, 1]]],
                                 dtype=torch.float64), reduction="sum")
    assert c.item() == pytest.approx(bce.item(), abs=1e-12)


def _hand_case():
    # Stride 10, radius 1 → centre regions are ±10 px (strict). A = [0,0,40,40] (class 0,
    # centre (20,20)); B = [44,14,56,26] (class 1, centre (50,20)).
    priors = torch.tensor([[20, 20, 10], [35, 20, 10], [50, 20, 10], [12, 28, 10],
                           [58, 20, 10], [100, 100, 10]], dtype=torch.float64)
    boxes = torch.tensor([[0, 0, 40, 40], [0, 0, 40, 40], [44, 14, 56, 26], [0, 0, 40, 20],
                          [44, 14, 56, 26], [0, 0, 40, 40]], dtype=torch.float64)
    gts = torch.tensor([[0, 0, 40, 40], [44, 14, 56, 26]], dtype=torch.float64)
    return torch.zeros(6, 2, dtype=torch.float64), priors, boxes, gts, torch.tensor([0, 1])


def test_hand_computed_assignment():
    # Regions: p0 A box+centre; p1 A box only (|dx| = 15); p2 B box+centre; p3 A box+centre;
    # p4 B centre only (x = 58 > 56); p5 neither → not a candidate.
    # Logits 0: the class cost is 2·ln 2 for every pair, so −3·log IoU and the 1e5 decide.
    # A: IoUs p0 1, p1 1, p3 .5 → k = int(2.5) = 2. Costs: p0 ≈ 0, p3 3·ln 2 = 2.08,
    #    p1 ≈ 0 + 1e5 → A takes p0, p3 — not p1, whose IoU is perfect but lies outside A's centre.
    # B: IoUs p2 1, p4 1 → k = 2. Costs: p2 ≈ 0, p4 ≈ 1e5, others 3·18.4 + 1e5 → B takes p2
    #    and, for lack of another in-both prior, p4.
    logits, priors, boxes, gts, labels = _hand_case()
    r = SimOTAAssigner(center_radius=1.0).assign(logits, priors, boxes, gts, labels)
    assert r.gt_inds.tolist() == [0, -1, 1, 0, 1, -1]
    assert r.labels.tolist() == [0, -1, 1, 0, 1, -1]
    assert r.ious.tolist() == pytest.approx([1, 0, 1, 0.5, 1, 0], abs=1e-6)
    ref_inds, _ = ref_simota(*(t.numpy() for t in (logits, priors, boxes, gts)), [0, 1],
                             radius=1.0)
    assert ref_inds.tolist() == r.gt_inds.tolist()


def test_conflict_keeps_the_cheaper_gt():
    # Two gts of different classes over the same priors; the class cost decides: the prior
    # whose logit favours class 1 goes to the class-1 gt although both gts select it.
    priors = torch.tensor([[20.0, 20, 10]], dtype=torch.float64)
    boxes = torch.tensor([[0.0, 0, 40, 40]], dtype=torch.float64)
    gts = torch.tensor([[0.0, 0, 40, 40], [0.0, 0, 40, 40]], dtype=torch.float64)
    logits = torch.tensor([[-2.0, 2.0]], dtype=torch.float64)
    r = SimOTAAssigner().assign(logits, priors, boxes, gts, torch.tensor([0, 1]))
    assert r.gt_inds.tolist() == [1] and r.labels.tolist() == [1]


@pytest.mark.parametrize("knobs", [{}, {"center_radius": 1.0}, {"candidate_topk": 3},
                                   {"cls_weight": 0.5}, {"iou_weight": 1.0}])
def test_matches_reference_batched_and_per_image(knobs):
    check_batched_and_reference(SimOTAAssigner(**knobs), lambda *a: ref_simota(
        *a, radius=knobs.get("center_radius", 2.5), topk=knobs.get("candidate_topk", 10),
        iou_w=knobs.get("iou_weight", 3.0), cls_w=knobs.get("cls_weight", 1.0)))


def test_chunked_equals_unchunked():
    check_chunking_invariant(lambda chunk: SimOTAAssigner(max_gts_per_chunk=chunk))


def test_no_gts_is_background():
    priors = torch.tensor([[10.0, 10, 10], [20, 20, 10]])
    r = SimOTAAssigner().assign(torch.zeros(2, 3), priors, torch.zeros(2, 4), torch.zeros(0, 4),
                                torch.zeros(0, dtype=torch.long))
    assert r.gt_inds.tolist() == [-1, -1] and r.labels.tolist() == [-1, -1]
    assert not math.isnan(r.ious.sum().item())
