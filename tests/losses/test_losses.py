"""QFL, GIoU and Dice against values worked out by hand (written as the scalar formulas)."""
from __future__ import annotations

import math

import pytest
import torch

from rtmdet.losses.functional import dice_loss, giou_loss, quality_focal_loss

torch.set_num_threads(1)


def softplus(x):
    return math.log1p(math.exp(x))


def sig(x):
    return 1 / (1 + math.exp(-x))


def test_qfl_hand_computed():
    logits = torch.tensor([[0.0, 2.0], [1.0, -1.0]], dtype=torch.float64)
    labels = torch.tensor([1, -1])
    scores = torch.tensor([0.8, 0.0], dtype=torch.float64)
    # Row 0: class 0 negative ln2·0.5² = 0.173287; class 1 positive
    # (softplus(2) − 0.8·2)·|0.8 − σ(2)|² = 0.526928·0.0065282 = 0.0034399 → 0.1767267.
    row0 = math.log(2) * 0.25 + (softplus(2) - 1.6) * (0.8 - sig(2)) ** 2
    # Row 1 (background): softplus(1)σ(1)² + softplus(−1)σ(−1)² = 0.701869 + 0.022658.
    row1 = softplus(1) * sig(1) ** 2 + softplus(-1) * sig(-1) ** 2
    assert row0 == pytest.approx(0.1767267, abs=1e-6) and row1 == pytest.approx(0.724527, abs=1e-6)
    out = quality_focal_loss(logits, labels, scores)
    assert out.tolist() == pytest.approx([row0, row1], abs=1e-12)
    # β = 1 and per-prior weights.
    out = quality_focal_loss(logits, labels, scores, beta=1.0,
                             weight=torch.tensor([2.0, 0.5], dtype=torch.float64))
    r0 = math.log(2) * 0.5 + (softplus(2) - 1.6) * abs(0.8 - sig(2))
    r1 = softplus(1) * sig(1) + softplus(-1) * sig(-1)
    assert out.tolist() == pytest.approx([2 * r0, 0.5 * r1], abs=1e-12)


def test_qfl_gradient_zero_at_perfect_quality():
    # The positive term's factor |s − σ(p)|^β vanishes when σ(p) = s: no push either way.
    p = torch.tensor([[math.log(0.7 / 0.3)]], dtype=torch.float64, requires_grad=True)
    loss = quality_focal_loss(p, torch.tensor([0]), torch.tensor([0.7], dtype=torch.float64))
    loss.sum().backward()
    assert loss.item() == pytest.approx(0, abs=1e-12) and p.grad.abs().item() < 1e-12
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda z: quality_focal_loss(z, torch.tensor([0, 2, -1, 1]),
                                     torch.tensor([0.3, 0.9, 0.0, 0.5], dtype=torch.float64)), (x,))


def test_qfl_rejects_bad_shapes():
    with pytest.raises(ValueError, match="quality_focal_loss"):
        quality_focal_loss(torch.zeros(3, 2), torch.zeros(2, dtype=torch.long), torch.zeros(2))


def test_giou_loss_hand_computed():
    pred = torch.tensor([[0.0, 0, 2, 2], [0, 0, 1, 1], [5, 5, 9, 7]], dtype=torch.float64)
    target = torch.tensor([[1.0, 1, 3, 3], [2, 0, 3, 1], [5, 5, 9, 7]], dtype=torch.float64)
    # Overlapping: IoU 1/7, enclosing 3×3 = 9, GIoU = 1/7 − 2/9; disjoint: IoU 0, enclosing
    # 3×1, union 2 → GIoU = −1/3; identical → 0.
    expected = [1 - (1 / 7 - 2 / 9), 1 + 1 / 3, 0.0]
    assert giou_loss(pred, target).tolist() == pytest.approx(expected, abs=1e-9)
    w = torch.tensor([0.5, 2.0, 3.0], dtype=torch.float64)
    assert giou_loss(pred, target, w).tolist() == pytest.approx(
        [e * x for e, x in zip(expected, w.tolist())], abs=1e-9)


def test_giou_loss_degenerate_is_finite():
    pred = torch.tensor([[1.0, 1, 1, 1]], requires_grad=True)
    loss = giou_loss(pred, torch.tensor([[1.0, 1, 1, 1]]))
    loss.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(pred.grad).all()
    # union and enclose clamp to 1e-6: GIoU = 0/1e-6 − (1e-6 − 1e-6)/1e-6 = 0 → loss 1.
    assert loss.item() == pytest.approx(1.0)


def test_dice_loss_hand_computed():
    logits = torch.zeros(2, 2, 2, dtype=torch.float64)      # p = 0.5 everywhere
    logits[1] = torch.tensor([[10.0, -10.0], [-10.0, -10.0]])
    target = torch.tensor([[[1, 0], [0, 0]], [[1, 0], [0, 0]]], dtype=torch.float64)
    # Image 0: Σpt = .5, Σp² = 1, Σt² = 1 → 1 − 1/(2 + 1e-5).
    d0 = 1 - 1 / (2 + 1e-5)
    # Image 1: p ≈ (σ(10), σ(−10)×3): Σpt = σ(10), Σp² = σ(10)² + 3σ(−10)².
    a, b = sig(10), sig(-10)
    d1 = 1 - 2 * a / (a * a + 3 * b * b + 1 + 1e-5)
    assert dice_loss(logits, target).tolist() == pytest.approx([d0, d1], abs=1e-12)
    assert dice_loss(logits, target, weight=torch.tensor([2.0, 1.0], dtype=torch.float64)
                     )[0].item() == pytest.approx(2 * d0, abs=1e-12)
