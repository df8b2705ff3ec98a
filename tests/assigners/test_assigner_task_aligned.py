"""Task-aligned assigner (TOOD, w/o head) against hand-worked cases and a literal loop reference
in float64; batched == per image, padding, chunking and the normalised-metric target."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rtmdet.assigners.task_aligned import TaskAlignedAssigner
from tests.helpers.assigner_checks import (check_batched_and_reference, check_chunking_invariant,
                                    scalar_iou)

torch.set_num_threads(1)


def ref_task_aligned(logits, priors, boxes, gts, labels, topk=13, alpha=1.0, beta=6.0,
                     target="iou"):
    """The module docstring written out literally: loops, float64."""
    p_count = len(priors)
    inds, ious, ts = -np.ones(p_count, int), np.zeros(p_count), np.zeros(p_count)
    best = np.full(p_count, -1.0)
    sig = 1 / (1 + np.exp(-logits))
    for j, g in enumerate(gts):
        cand = []
        for p in range(p_count):
            u = scalar_iou(boxes[p], g)
            t = sig[p, labels[j]] ** alpha * u ** beta
            if g[0] < priors[p, 0] < g[2] and g[1] < priors[p, 1] < g[3] and t > 0:
                cand.append((-t, p, u))
        for neg_t, p, u in sorted(cand)[:topk]:
            if u > best[p]:                                 # conflicts: highest IoU
                best[p], inds[p], ious[p], ts[p] = u, j, u, -neg_t
    if target == "alignment":
        out = ious.copy()
        for j in range(len(gts)):
            m = inds == j
            if m.any():
                out[m] = ts[m] / ts[m].max() * ious[m].max()
        return inds, out
    return inds, ious


def _hand_case():
    # One gt A = [0,0,40,40] (class 0), stride 10.
    priors = torch.tensor([[10, 10, 10], [20, 20, 10], [30, 30, 10], [50, 50, 10], [20, 10, 10]],
                          dtype=torch.float64)
    boxes = torch.tensor([[0, 0, 40, 40], [0, 0, 40, 36], [0, 0, 40, 30], [0, 0, 40, 40],
                          [100, 100, 110, 110]], dtype=torch.float64)
    logits = torch.tensor([[-2.0, 0], [0, 0], [2, 0], [5, 0], [5, 0]], dtype=torch.float64)
    return logits, priors, boxes, torch.tensor([[0, 0, 40, 40]], dtype=torch.float64)


def test_hand_computed_topk_by_alignment():
    # t = σ(logit)·IoU^6: p0 σ(−2)·1 = .1192; p1 .5·.9^6 = .2657; p2 σ(2)·.75^6 = .8808·.1780
    # = .1568; p3 outside A (excluded however large its t); p4 IoU 0 → t = 0 (excluded).
    # topk 2 → p1, p2: the perfectly placed but unconfident p0 loses to better-aligned priors.
    logits, priors, boxes, gts = _hand_case()
    r = TaskAlignedAssigner(topk=2).assign(logits, priors, boxes, gts, torch.tensor([0]))
    assert r.gt_inds.tolist() == [-1, 0, 0, -1, -1]
    assert r.labels.tolist() == [-1, 0, 0, -1, -1]
    assert r.ious.tolist() == pytest.approx([0, 0.9, 0.75, 0, 0], abs=1e-6)
    # TOOD's normalised target: t / max t · max IoU → p1 .2657/.2657·.9 = .9,
    # p2 .1568/.2657·.9 = .5310.
    n = TaskAlignedAssigner(topk=2, target="alignment").assign(logits, priors, boxes, gts,
                                                               torch.tensor([0]))
    assert n.gt_inds.tolist() == r.gt_inds.tolist()
    t1, t2 = 0.5 * 0.9 ** 6, torch.sigmoid(torch.tensor(2.0)).item() * 0.75 ** 6
    assert n.ious.tolist() == pytest.approx([0, 0.9, t2 / t1 * 0.9, 0, 0], abs=1e-6)
    assert n.ious[2].item() == pytest.approx(0.5310, abs=1e-4)


def test_conflict_goes_to_highest_iou_not_highest_t():
    # One prior inside both gts, topk 1 → both select it. IoU with A [0,0,40,40] .9, with
    # B [0,0,40,36] 1; the logits favour A's class (t_A = σ(3)·.9^6 = .506 > t_B = σ(−3) = .047)
    # but the IoU rule hands it to B (index 1, so it is not the first-index tie-break either).
    priors = torch.tensor([[20.0, 20, 10]], dtype=torch.float64)
    boxes = torch.tensor([[0.0, 0, 40, 36]], dtype=torch.float64)
    gts = torch.tensor([[0.0, 0, 40, 40], [0, 0, 40, 36]], dtype=torch.float64)
    logits = torch.tensor([[3.0, -3.0]], dtype=torch.float64)
    r = TaskAlignedAssigner(topk=1).assign(logits, priors, boxes, gts, torch.tensor([0, 1]))
    assert r.gt_inds.tolist() == [1] and r.labels.tolist() == [1]
    assert r.ious.item() == pytest.approx(1.0)


@pytest.mark.parametrize("knobs", [{}, {"topk": 4}, {"alpha": 0.5, "beta": 2.0},
                                   {"target": "alignment"}])
def test_matches_reference_batched_and_per_image(knobs):
    check_batched_and_reference(TaskAlignedAssigner(**knobs),
                                lambda *a: ref_task_aligned(*a, **knobs))


@pytest.mark.parametrize("target", ["iou", "alignment"])
def test_chunked_equals_unchunked(target):
    check_chunking_invariant(
        lambda chunk: TaskAlignedAssigner(target=target, max_gts_per_chunk=chunk))


def test_no_gts_is_background():
    priors = torch.tensor([[10.0, 10, 10], [20, 20, 10]])
    r = TaskAlignedAssigner().assign(torch.zeros(2, 3), priors, torch.zeros(2, 4),
                                     torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    assert r.gt_inds.tolist() == [-1, -1] and r.ious.tolist() == [0, 0]
    with pytest.raises(ValueError, match="target"):
        TaskAlignedAssigner(target="t")
