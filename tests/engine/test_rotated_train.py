"""RTMDet-R training parts: the rotated criterion on a hand-made case (assignment and both losses
recomputed independently with shapely and numpy), its gradients, and the DOTA random rotation."""
from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
import torch

from rtmdet.config import load_config
from rtmdet.losses.build import build_criterion
from rtmdet.data import transforms as T
from rtmdet.data.dota import quads_to_rboxes
from rtmdet.geometry.rotated import rbox_to_poly
from rtmdet.losses.rotated_criterion import RotatedRTMDetCriterion

torch.set_num_threads(1)
STRIDES = (8, 16, 32)
SIZE = 64                                 # 8×8 + 4×4 + 2×2 = 84 priors
GT = (30.0, 34.0, 40.0, 16.0, 0.5)        # one rotated gt (cx, cy, w, h, θ)
DIST = (12.0, 6.0, 12.0, 6.0)             # every prior predicts a 24×12 box centred on itself
LOGIT = -2.0
LABEL = 3


def criterion() -> RotatedRTMDetCriterion:
    return build_criterion(load_config("rtmdet-r-tiny"), type("M", (), {"strides": STRIDES})())


def spy_assign(crit) -> dict:
    """Wrap ``crit.assign`` so the test can read the last AssignResult as ``seen["r"]``."""
    seen, orig = {}, crit.assign

    def spy(*args):
        seen["r"] = orig(*args)
        return seen["r"]

    crit.assign = spy
    return seen


def head_outputs(angle: float, num_classes: int = 15, batch: int = 1, requires_grad=False):
    cls, box, ang = [], [], []
    for s in STRIDES:
        n = SIZE // s
        cls.append(torch.full((batch, num_classes, n, n), LOGIT))
        box.append(torch.tensor(DIST).view(1, 4, 1, 1).repeat(batch, 1, n, n))
        ang.append(torch.full((batch, 1, n, n), angle))
    if requires_grad:
        for t in cls + box + ang:
            t.requires_grad_(True)
    return cls, box, ang


def priors() -> list[tuple[float, float, int]]:
    """Prior points in the assigner's order (level, row, column), stride-spaced from 0."""
    return [(x * s, y * s, s) for s in STRIDES for y in range(SIZE // s) for x in range(SIZE // s)]


def poly(rbox) -> shapely.Polygon:
    return shapely.Polygon(rbox_to_poly(torch.tensor(rbox, dtype=torch.float64)).numpy())


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def expected(angle: float) -> tuple[dict[int, float], float, float]:
    """SPEC §5/§6/§10 by hand for one gt: positives {prior: IoU}, loss_cls, loss_bbox."""
    cx, cy, w, h, t = GT
    shrunk = poly((cx, cy, w - 0.02, h - 0.02, t))
    gt_poly = poly(GT)
    cand, ious, costs = [], [], []
    for i, (x, y, s) in enumerate(priors()):
        if not shrunk.contains(shapely.Point(x, y)):          # strictly inside, shrunk 0.01
            continue
        pred = poly((x, y, 24.0, 12.0, angle))
        iou = pred.intersection(gt_poly).area / pred.union(gt_poly).area
        p = sig(LOGIT)
        bce = lambda l, y: softplus(l) - l * y                 # noqa: E731
        c_cls = 14 * softplus(LOGIT) * p ** 2 + bce(LOGIT, iou) * (iou - p) ** 2
        c_reg = -math.log(iou + 1e-7) * 3
        c_ctr = 10 ** (math.hypot(x - cx, y - cy) / s - 3)
        cand.append(i), ious.append(iou), costs.append(c_cls + c_reg + c_ctr)
    k = max(1, int(sum(sorted(ious, reverse=True)[:13])))
    chosen = np.argsort(costs, kind="stable")[:k]
    pos = {cand[j]: ious[j] for j in chosen}
    norm = max(sum(pos.values()), 1.0)
    n_priors, p = len(priors()), sig(LOGIT)
    neg = softplus(LOGIT) * p ** 2
    qfl = 15 * n_priors * neg
    for iou in pos.values():
        qfl += (softplus(LOGIT) - LOGIT * iou) * (iou - p) ** 2 - neg
    box = sum(iou * (1 - max(iou, 1e-6)) for iou in pos.values())
    return pos, qfl / norm, 2 * box / norm


@pytest.mark.parametrize("angle", [0.5, 0.2, -1.0])
def test_hand_made_case_matches_independent_computation(angle):
    crit = criterion()
    seen = spy_assign(crit)
    targets = [{"rboxes": torch.tensor([GT]), "labels": torch.tensor([LABEL]),
                "difficult": torch.tensor([False])}]
    losses = crit(*head_outputs(angle), targets)
    pos, loss_cls, loss_bbox = expected(angle)
    r = seen["r"]
    got = {int(i): float(r.ious[0, i]) for i in torch.nonzero(r.pos_mask[0]).flatten()}
    assert set(got) == set(pos) and len(pos) >= 1
    for i in pos:
        assert got[i] == pytest.approx(pos[i], abs=1e-5)
        assert int(r.labels[0, i]) == LABEL
    assert float(losses["loss_cls"]) == pytest.approx(loss_cls, rel=1e-4)
    assert float(losses["loss_bbox"]) == pytest.approx(loss_bbox, rel=1e-4, abs=1e-6)
    assert float(losses["loss"]) == pytest.approx(loss_cls + loss_bbox, rel=1e-4)


def test_candidates_use_the_shrunk_rotated_box_not_its_hull():
    """A thin diagonal gt: priors inside its axis-aligned hull but outside the rotated box must
    not be candidates (with the hull they would be)."""
    crit = criterion()
    gt = torch.tensor([[32.0, 32.0, 60.0, 6.0, math.pi / 4]])
    pts = torch.tensor([[x, y] for x, y, _ in priors()], dtype=torch.float32)
    inside = crit.assigner.inside_fn(pts, gt[None])[0, :, 0]
    want = [poly((32, 32, 60 - 0.02, 6 - 0.02, math.pi / 4)).contains(shapely.Point(x, y))
            for x, y in pts.tolist()]
    assert inside.tolist() == want
    hull = shapely.box(*poly(gt[0].tolist()).bounds)
    assert sum(hull.contains(shapely.Point(x, y)) for x, y in pts.tolist()) > sum(want)


def test_gradient_descent_on_raw_outputs_fits_the_rotated_gt():
    """Descending the loss on the raw distance/angle maps drives the positives' rotated IoU up:
    the decode, the assigner and the differentiable IoU agree on what 'better' means."""
    crit = criterion()
    targets = [{"rboxes": torch.tensor([GT]), "labels": torch.tensor([LABEL])}]
    cls, box, ang = head_outputs(0.0, requires_grad=True)
    first = crit(cls, box, ang, targets)
    first["loss_bbox"].backward()
    assert any(float(a.grad.abs().sum()) > 0 for a in ang)       # the angle is learned
    opt = torch.optim.Adam(box + ang, lr=0.05)
    for _ in range(60):
        opt.zero_grad()
        crit(cls, box, ang, targets)["loss_bbox"].backward()
        opt.step()
    last = crit(cls, box, ang, targets)
    # loss_bbox / 2 = the IoU-weighted mean of (1 − IoU) over the positives.
    iou_first = 1 - float(first["loss_bbox"].detach()) / 2
    iou_last = 1 - float(last["loss_bbox"].detach()) / 2
    assert iou_first < 0.45 and iou_last > iou_first + 0.2


def test_no_gt_and_padding():
    crit = criterion()
    cls, box, ang = head_outputs(0.3, batch=2, requires_grad=True)
    targets = [{"rboxes": torch.tensor([GT]), "labels": torch.tensor([LABEL])},
               {"rboxes": torch.zeros(0, 5), "labels": torch.zeros(0, dtype=torch.long)}]
    losses = crit(cls, box, ang, targets)
    single = crit(*[[x[:1].detach() for x in xs] for xs in (cls, box, ang)], targets[:1])
    # The empty image only adds background QFL; its box loss is zero.
    assert float(losses["loss_bbox"]) == pytest.approx(float(single["loss_bbox"]), rel=1e-5)
    assert float(losses["loss_cls"]) > float(single["loss_cls"])
    losses["loss"].backward()
    empty = crit(*[[x[1:].detach() for x in xs] for xs in (cls, box, ang)], targets[1:])
    assert float(empty["loss_bbox"]) == 0.0


def test_bad_targets_are_clear_errors():
    crit = criterion()
    with pytest.raises(ValueError, match="rboxes"):
        crit(*head_outputs(0.0), [{"boxes": torch.zeros(1, 4), "labels": torch.tensor([0])}])
    with pytest.raises(ValueError, match="labels must be in"):
        crit(*head_outputs(0.0), [{"rboxes": torch.tensor([GT]), "labels": torch.tensor([15])}])
    with pytest.raises(ValueError, match="levels"):
        cls, box, ang = head_outputs(0.0)
        crit(cls, box, ang[:2], [{"rboxes": torch.tensor([GT]), "labels": torch.tensor([0])}])


# ----------------------------------------------------------------------------- random rotation
def sample_with(quads: np.ndarray, labels: list[int], size: int = 64) -> dict:
    img = np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)
    quads = np.asarray(quads, np.float32)
    return {"img": img, "quads": quads, "boxes": np.concatenate([quads.min(1), quads.max(1)], 1),
            "labels": np.asarray(labels, np.int64), "difficult": np.zeros(len(labels), bool)}


QUAD = [[10, 20], [30, 20], [30, 28], [10, 28]]


def test_right_angle_rotation_is_exact():
    s = sample_with([QUAD], [1])
    r = T.rotate(s, 90)
    assert np.array_equal(r["img"], np.rot90(s["img"], 1))
    # (x, y) → (y, W − x): counter-clockwise on screen
    np.testing.assert_allclose(r["quads"][0], [[20, 54], [20, 34], [28, 34], [28, 54]], atol=1e-4)
    np.testing.assert_allclose(r["boxes"][0], [20, 34, 28, 54], atol=1e-4)


def test_any_angle_rotates_the_rbox_and_drops_objects_leaving_the_canvas():
    s = sample_with([QUAD, [[0, 0], [6, 0], [6, 4], [0, 4]]], [1, 2])
    r = T.rotate(s, 30)
    assert r["labels"].tolist() == [1]                 # the corner object's centre left the canvas
    before, after = quads_to_rboxes(s["quads"][:1])[0], quads_to_rboxes(r["quads"])[0]
    a = math.radians(30)
    dx, dy = before[0] - 32, before[1] - 32
    # Screen-counter-clockwise by a (y down) = θ decreases by a; centre turns about (32, 32).
    want_c = (32 + dx * math.cos(a) + dy * math.sin(a), 32 - dx * math.sin(a) + dy * math.cos(a))
    np.testing.assert_allclose(after[:2], want_c, atol=1e-3)
    np.testing.assert_allclose(after[2:4], before[2:4], atol=1e-3)
    diff = (after[4] - (before[4] - a) + math.pi / 2) % math.pi - math.pi / 2
    assert abs(diff) < 1e-4
    assert r["img"][0, 0].tolist() == [0, 0, 0]       # border value 0 in the uncovered corner


def test_round_classes_only_get_right_angles():
    s = sample_with([QUAD], [9])                       # storage-tank
    rots = [np.rot90(s["img"], k) for k in range(4)]
    turned = 0
    for seed in range(20):
        r = T.random_rotate_rotated(s, np.random.default_rng(seed))
        assert any(np.array_equal(r["img"], x) for x in rots)
        turned += not np.array_equal(r["img"], s["img"])
    assert 3 <= turned <= 17                           # p = 0.5
    plain = sample_with([QUAD], [1])
    odd = [T.random_rotate_rotated(plain, np.random.default_rng(seed)) for seed in range(20)]
    assert any(not any(np.array_equal(r["img"], np.rot90(plain["img"], k)) for k in range(4))
               for r in odd)


def test_sign_flipped_boxes_count_as_no_overlap():
    """Negative l + r (a mirrored box) has the same |w|·|h| polygon as a proper one, but the test
    path drops it, so training must not reward it: IoU 0 for the assigner and the loss."""
    crit = criterion()
    targets = [{"rboxes": torch.tensor([GT]), "labels": torch.tensor([LABEL])}]
    cls, box, ang = head_outputs(0.5)
    proper = crit(cls, box, ang, targets)
    flipped = [-b for b in box]                      # l, t, r, b all negated: w, h < 0
    seen = spy_assign(crit)
    losses = crit(cls, flipped, ang, targets)
    r = seen["r"]
    assert float(r.ious.max()) == 0.0 and int(r.pos_mask.sum()) == 1   # dynamic k ≥ 1
    assert float(losses["loss_bbox"]) == 0.0          # IoU-weighted by a zero target
    assert float(proper["loss_bbox"]) > 0.0
    # Only the width flipped: still improper.
    half = [torch.cat([-b[:, :1], b[:, 1:2], b[:, 2:3] * 0, b[:, 3:]], 1) for b in box]
    crit(cls, half, ang, targets)
    assert float(seen["r"].ious.max()) == 0.0
