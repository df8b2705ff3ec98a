"""Dynamic soft-label assigner (SPEC §5) against hand-computed numbers and a literal
per-candidate, per-gt loop reference in float64."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rtmdet.assigners.dsla import DynamicSoftLabelAssigner, soft_cls_cost
from rtmdet.geometry.boxes import make_priors
from rtmdet.config import AssignerConfig
from tests.helpers.assigner_checks import (check_batched_and_reference, check_chunking_invariant,
                                    reference_match)

torch.set_num_threads(1)


def ref_assign(logits, priors, boxes, gts, labels, topk=13, cls=True, soft=True, reg_w=3.0,
               center=True):
    """SPEC §5 written out literally: Python loops, full class sum, float64."""
    p_count, c_count = logits.shape
    cand = [p for p in range(p_count)
            if any(g[0] < priors[p, 0] < g[2] and g[1] < priors[p, 1] < g[3] for g in gts)]

    def pair_cost(p, j, g, u, sig):
        y = np.zeros(c_count)
        y[labels[j]] = u if soft else 1.0
        bce = np.log1p(np.exp(logits[p])) - y * logits[p]
        d = math.dist(priors[p, :2], ((g[0] + g[2]) / 2, (g[1] + g[3]) / 2))
        return (cls * np.sum(bce * (y - sig) ** 2) - reg_w * np.log(u + 1e-7)
                + center * 10 ** (d / priors[p, 2] - 3))
    return reference_match(logits, boxes, gts, cand, topk, pair_cost)


def test_worked_example_cls_cost():
    # SPEC: logits (0.1, 0.3, 0.6), class 2, IoU 0.9 → 0.5193. By hand:
    # softplus(.1)·σ(.1)² = .74440·.27561 = .20516; softplus(.3)·σ(.3)² = .85436·.32998 = .28192;
    # (softplus(.6) − .9·.6)·(.9 − σ(.6))² = .49749·.06469 = .03218; sum .51926.
    c = soft_cls_cost(torch.tensor([[[0.1, 0.3, 0.6]]]), torch.tensor([[2]]), torch.tensor([[[0.9]]]))
    assert c.shape == (1, 1, 1)
    assert c.item() == pytest.approx(0.5193, abs=5e-5)


def _hand_case():
    # Strides 10. A = [0,0,40,40] (class 0), B = [20,0,60,40] (class 1).
    priors = torch.tensor([[10, 10, 10], [30, 20, 10], [50, 20, 10], [40, 0, 10],
                           [100, 100, 10], [10, 30, 10]], dtype=torch.float64)
    boxes = torch.tensor([[0, 0, 40, 40], [10, 0, 50, 40], [20, 0, 60, 40], [0, 0, 40, 40],
                          [20, 0, 60, 40], [0, 0, 40, 20]], dtype=torch.float64)
    gts = torch.tensor([[0, 0, 40, 40], [20, 0, 60, 40]], dtype=torch.float64)
    labels = torch.tensor([0, 1])
    logits = torch.zeros(6, 2, dtype=torch.float64)
    logits[1, 1] = 0.4
    return logits, priors, boxes, gts, labels


def test_hand_computed_assignment():
    # Candidates: p0, p1, p2, p5 (p3 lies on the top edge y=0 of both → not strictly inside;
    # p4 is outside). IoUs (A, B): p0 (1, 1/3), p1 (.6, .6), p2 (1/3, 1), p5 (.5, .2).
    # k_A = int(1 + .6 + 1/3 + .5 = 2.43) = 2 — p3's perfect IoU with A must not count (else 3);
    # k_B = int(2.13) = 2.
    # Costs (cls + reg + centre), e.g. A·p0: ln2·(.25+.25) + 0 + 10^(√200/10 − 3) = .3725;
    # A·p1: [ln2·.01 + softplus(.4)σ(.4)²] + (−3 ln .6) + 10^(1−3) = .3345 + 1.5325 + .01 = 1.8767;
    # B·p1: [ln2·.25 + BCE(.4,.6)(.6−σ(.4))²] + 1.5325 + .01 = 1.7158; B·p2: .3466 + 0 + .01 = .3566;
    # A·p5 = 2.2787, A·p2 = 4.4884, B·p0 = 4.9414, B·p5 = 6.5170.
    # A takes {p0, p1}, B takes {p2, p1}; p1 is cheaper for B (1.7158 < 1.8767) → B.
    logits, priors, boxes, gts, labels = _hand_case()
    r = DynamicSoftLabelAssigner().assign(logits, priors, boxes, gts, labels)
    assert r.gt_inds.tolist() == [0, 1, 1, -1, -1, -1]
    assert r.labels.tolist() == [0, 1, 1, -1, -1, -1]
    assert r.ious.tolist() == pytest.approx([1.0, 0.6, 1.0, 0, 0, 0], abs=1e-6)
    ref_inds, ref_ious = ref_assign(*(t.numpy() for t in (logits, priors, boxes, gts)),
                                    labels.tolist())
    assert ref_inds.tolist() == r.gt_inds.tolist()


def test_dynamic_k_truncates():
    # One gt, two candidates with IoU 1.0 and 0.9: int(1.9) = 1 positive (rounding would give 2).
    priors = torch.tensor([[10.0, 10, 10], [20, 20, 10]])
    boxes = torch.tensor([[0.0, 0, 40, 40], [0, 0, 40, 36]])
    gts = torch.tensor([[0.0, 0, 40, 40]])
    r = DynamicSoftLabelAssigner().assign(torch.zeros(2, 3), priors, boxes, gts, torch.tensor([2]))
    assert r.gt_inds.tolist() == [0, -1]
    assert r.labels.tolist() == [2, -1]


@pytest.mark.parametrize("knobs", [{}, {"cls_cost": False}, {"soft_label": False},
                                   {"center_prior": False}, {"reg_weight": 1.0}])
def test_matches_reference_batched_and_per_image(knobs):
    check_batched_and_reference(DynamicSoftLabelAssigner(**knobs), lambda *a: ref_assign(
        *a, cls=knobs.get("cls_cost", True), soft=knobs.get("soft_label", True),
        reg_w=knobs.get("reg_weight", 3.0), center=knobs.get("center_prior", True)))


def test_chunked_equals_unchunked():
    check_chunking_invariant(lambda chunk: DynamicSoftLabelAssigner(max_gts_per_chunk=chunk))


def test_500_gts_at_640_chunked():
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    points, strides = make_priors([(80, 80), (40, 40), (20, 20)], [8, 16, 32])
    priors = torch.cat([points, strides[:, None]], 1)
    xy = torch.rand(1, 500, 2, generator=gen) * 600
    gts = torch.cat([xy, xy + 4 + torch.rand(1, 500, 2, generator=gen) * 60], -1)
    labels = torch.randint(0, 80, (1, 500), generator=gen)
    boxes = gts[:, torch.randint(0, 500, (8400,), generator=gen)] + torch.randn(1, 8400, 4,
                                                                              generator=gen)
    logits = torch.randn(1, 8400, 80, generator=gen)
    a = DynamicSoftLabelAssigner(max_gts_per_chunk=64).assign(logits, priors, boxes, gts, labels)
    b = DynamicSoftLabelAssigner(max_gts_per_chunk=500).assign(logits, priors, boxes, gts, labels)
    assert torch.equal(a.gt_inds, b.gt_inds)
    assert a.pos_mask.sum() > 500


def test_no_gts_or_no_candidates_is_background():
    priors = torch.tensor([[10.0, 10, 10], [20, 20, 10]])
    boxes = torch.tensor([[0.0, 0, 40, 40], [0, 0, 40, 36]])
    a = DynamicSoftLabelAssigner()
    r = a.assign(torch.zeros(2, 3), priors, boxes, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    assert r.gt_inds.tolist() == [-1, -1] and r.ious.tolist() == [0, 0]
    far = torch.tensor([[200.0, 200, 240, 240]])
    r = a.assign(torch.zeros(2, 3), priors, boxes, far, torch.tensor([1]))
    assert r.gt_inds.tolist() == [-1, -1] and r.labels.tolist() == [-1, -1]


def test_gt_centers_and_pluggable_geometry():
    logits, priors, boxes, gts, labels = _hand_case()
    base = DynamicSoftLabelAssigner()
    same = base.assign(logits, priors, boxes, gts, labels,
                       gt_centers=(gts[:, :2] + gts[:, 2:]) / 2)
    assert same.gt_inds.tolist() == [0, 1, 1, -1, -1, -1]
    # Moving B's centre far away (a mask centre of mass elsewhere) makes B·p1 cost 10^(dist/10-3)
    # huge, so the conflict at p1 now goes to A.
    r = base.assign(logits, priors, boxes, gts, labels,
                    gt_centers=torch.tensor([[20.0, 20], [40, 80]], dtype=torch.float64))
    assert r.gt_inds[1].item() == 0
    # A custom inside test (here: a closed box, so p3 on the edge becomes a candidate).
    def inside_closed(points, g):
        x, y = points[None, :, None, 0], points[None, :, None, 1]
        g = g[:, None]
        return (x >= g[..., 0]) & (x <= g[..., 2]) & (y >= g[..., 1]) & (y <= g[..., 3])
    r = DynamicSoftLabelAssigner(inside_fn=inside_closed).assign(logits, priors, boxes, gts, labels)
    assert r.gt_inds[3].item() == 0                  # perfect IoU with A, now counted


def test_from_config_mirrors_fields():
    cfg = AssignerConfig(topk=9, center_prior=False, max_gts_per_chunk=7)
    a = DynamicSoftLabelAssigner.from_config(cfg)
    assert (a.topk, a.center_prior, a.max_gts_per_chunk) == (9, False, 7)
