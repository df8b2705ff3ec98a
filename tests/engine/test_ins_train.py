"""RTMDet-Ins training: Dice on stride-4 samples (hand-computed), mask-centroid assignment,
mask loss decreasing on one batch, and `rtmdet train` end-to-end with an Ins config."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

from rtmdet.models.build import build_model
from rtmdet.commands.main import main as cli_main
from rtmdet.config import load_config
from rtmdet.losses.build import build_criterion
from rtmdet.data.loader import build_train_dataset, collate
from rtmdet.losses.ins_criterion import RTMDetInsCriterion, with_mask_centers
from rtmdet.losses.functional import dice_loss
from rtmdet.data.preprocess import normalize
from rtmdet.assigners.dsla import AssignResult, DynamicSoftLabelAssigner
from rtmdet.data.synthetic import write_synth_coco

EPS = 5e-6


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread (after conftest's 2): on a shared 2-core machine OpenMP's spinning
    threads make a training step an order of magnitude slower when the cores are busy."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return write_synth_coco(tmp_path_factory.mktemp("ins_synth"), n_train=8, n_val=4, seed=0,
                            size_range=(96, 160), max_objects=5)


def constant_kernel(bias: float) -> torch.Tensor:
    """A 169-vector whose dynamic network outputs ``bias`` everywhere: all weights 0 and the
    last layer's bias (the final entry of the official layout) = ``bias``."""
    k = torch.zeros(169)
    k[-1] = bias
    return k


def make_criterion() -> RTMDetInsCriterion:
    return RTMDetInsCriterion(DynamicSoftLabelAssigner(), (8, 16, 32))


def mask_loss_for(kernels_by_prior: dict[int, torch.Tensor], gt_masks: torch.Tensor,
                  match: dict[int, int], size: int = 32) -> torch.Tensor:
    """mask_loss of one image with the given priors (indices into the 3-level prior list of a
    ``size``² input) matched to gts."""
    crit = make_criterion()
    from rtmdet.geometry.boxes import make_priors
    sizes = [(size // s, size // s) for s in (8, 16, 32)]
    points, strides = make_priors(sizes, (8, 16, 32))
    p = points.shape[0]
    kernels = torch.zeros(1, p, 169)
    gt_inds = torch.full((1, p), -1)
    for prior, kern in kernels_by_prior.items():
        kernels[0, prior] = kern
        gt_inds[0, prior] = match[prior]
    feats = torch.randn(1, 8, size // 8, size // 8)       # ignored: every weight is 0
    return crit.mask_loss(feats, kernels, points, strides, gt_inds, [{"masks": gt_masks}])


def test_dice_loss_hand_computed():
    # p = (0.5, 1, 0, 0.5), t = (1, 1, 0, 0): Σpt = 1.5, Σp² = 1.5, Σt² = 2.
    logits = torch.tensor([[[0.0, 100.0], [-100.0, 0.0]]])
    target = torch.tensor([[[1, 1], [0, 0]]], dtype=torch.bool)
    expected = 1 - 2 * 1.5 / (1.5 + 2 + 2 * EPS)
    assert dice_loss(logits, target).item() == pytest.approx(expected, abs=1e-7)
    # An empty prediction against an empty target: 0/eps → loss 1 (no NaN).
    assert dice_loss(torch.full((1, 2, 2), -100.0), torch.zeros(1, 2, 2)).item() == \
        pytest.approx(1.0, abs=1e-6)


def test_mask_loss_samples_gt_at_stride4_cell_centres():
    """Logits constant 0 (p = ½ on the 8×8 stride-4 grid of a 32² input); the gt is sampled
    at [2::4, 2::4], so a mask covering rows/cols 0..15 gives 16 of 64 target pixels."""
    gt = torch.zeros(1, 32, 32, dtype=torch.bool)
    gt[0, :16, :16] = True
    loss = mask_loss_for({0: constant_kernel(0.0)}, gt, {0: 0})
    expected = 1 - 2 * 0.5 * 16 / (64 * 0.25 + 16 + 2 * EPS)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    # Pixels off the sample grid (rows 0, 1, 3) are never supervised: empty target → loss 1.
    off = torch.zeros(1, 32, 32, dtype=torch.bool)
    off[0, [0, 1, 3], :] = True
    assert mask_loss_for({0: constant_kernel(0.0)}, off, {0: 0}).item() == \
        pytest.approx(1 - 0 / (64 * 0.25 + 2 * EPS), abs=1e-6)
    # A single sampled pixel (2, 2), prediction p = σ(3) everywhere.
    one = torch.zeros(1, 32, 32, dtype=torch.bool)
    one[0, 2, 2] = True
    p = 1 / (1 + math.exp(-3.0))
    expected = 1 - 2 * p / (64 * p * p + 1 + 2 * EPS)
    assert mask_loss_for({5: constant_kernel(3.0)}, one, {5: 0}).item() == \
        pytest.approx(expected, abs=1e-6)


def test_mask_loss_is_mean_over_positives():
    gt = torch.zeros(2, 32, 32, dtype=torch.bool)
    gt[0, :16, :16] = True
    gt[1, 2, 2] = True
    p1 = 1 / (1 + math.exp(-1.0))
    d0 = 1 - 2 * 0.5 * 16 / (64 * 0.25 + 16 + 2 * EPS)
    d1 = 1 - 2 * p1 / (64 * p1 * p1 + 1 + 2 * EPS)
    # Prior 17 (the first stride-16 prior) and prior 20 (the stride-32 one) are matched too:
    # their stride does not change a constant output.
    loss = mask_loss_for({0: constant_kernel(0.0), 17: constant_kernel(1.0),
                          20: constant_kernel(0.0)}, gt, {0: 0, 17: 1, 20: 0})
    assert loss.item() == pytest.approx((d0 + d1 + d0) / 3, abs=1e-6)


def test_mask_centroids_feed_the_assigner():
    """An L-shaped mask: centre of mass (2.7222, 6.2778), far from its box centre (5, 5)."""
    masks = torch.zeros(2, 16, 16, dtype=torch.bool)
    masks[0, 0:10, 0:2] = True          # 20 px, centre (0.5, 4.5)
    masks[0, 8:10, 2:10] = True         # 16 px, centre (5.5, 8.5)
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [4.0, 4.0, 8.0, 12.0]])   # 2nd mask empty
    [t] = with_mask_centers([{"boxes": boxes, "labels": torch.tensor([0, 1]), "masks": masks}])
    cx, cy = (20 * 0.5 + 16 * 5.5) / 36, (20 * 4.5 + 16 * 8.5) / 36
    torch.testing.assert_close(t["centers"], torch.tensor([[cx, cy], [6.0, 8.0]]))

    crit = make_criterion()
    seen = {}

    def spy(logits, priors, decoded, gt_boxes, gt_labels, gt_valid, gt_centers):
        seen["centers"] = gt_centers.clone()
        b, p = logits.shape[:2]
        return AssignResult(torch.full((b, p), -1), torch.zeros(b, p), torch.full((b, p), -1))

    crit.assign = spy
    model = build_model(load_config("rtmdet-ins-tiny", {"model.head.num_classes": 2}).model)
    with torch.no_grad():
        out = model.eval()(torch.zeros(1, 3, 64, 64))
    big = torch.zeros(2, 64, 64, dtype=torch.bool)
    big[:, :16, :16] = masks
    losses = crit(*out, [{"boxes": boxes, "labels": torch.tensor([0, 1]), "masks": big}])
    torch.testing.assert_close(seen["centers"][0], torch.tensor([[cx, cy], [6.0, 8.0]]))
    assert losses["loss_mask"].item() == 0.0          # no positives: zero, still in the graph


def test_centroid_changes_the_assignment():
    """Same prediction, same box: a mask concentrated in the box's bottom-right corner moves
    the cheapest candidates there (the centre cost is 10^(dist/stride − 3))."""
    torch.manual_seed(0)
    assigner = DynamicSoftLabelAssigner()
    from rtmdet.geometry.boxes import make_priors
    points, strides = make_priors([(8, 8)], (8,))
    priors = torch.cat([points, strides[:, None]], 1)
    gt = torch.tensor([[0.0, 0.0, 64.0, 64.0]])
    decoded = gt.expand(64, 4).clone()                # every prior predicts the gt box: IoU 1
    logits = torch.zeros(64, 1)
    labels = torch.tensor([0])
    by_box = assigner.assign(logits, priors, decoded, gt, labels)
    by_mass = assigner.assign(logits, priors, decoded, gt, labels,
                              gt_centers=torch.tensor([[56.0, 56.0]]))
    # Priors (top-left corners, stride 8) strictly inside the box: x, y ∈ {8..56}; all IoUs
    # are 1, so k = 13 and the 13 candidates nearest to the centre win (no ties at the cut).
    def nearest(c, radius):
        d = (points - torch.tensor(c)).norm(dim=1)
        inside = (points > 0).all(dim=1)
        return {tuple(p) for p in points[inside & (d <= radius)].tolist()}

    box_set = {tuple(p) for p in points[by_box.pos_mask].tolist()}
    mass_set = {tuple(p) for p in points[by_mass.pos_mask].tolist()}
    assert box_set == nearest((32.0, 32.0), 16.0) and len(box_set) == 13
    assert mass_set == nearest((56.0, 56.0), 640 ** 0.5 + 1e-3) and len(mass_set) == 13


def one_batch(synth: Path, size: int = 96):
    cfg = load_config("rtmdet-ins-tiny", {
        "data.root": str(synth), "data.img_size": size, "data.num_workers": 0,
        "model.head.num_classes": 8, "data.mosaic_cache_size": 4, "data.mixup_cache_size": 2})
    ds = build_train_dataset(cfg, stage=2)
    images, targets = collate([ds[i] for i in range(2)])
    targets = [{k: v for k, v in t.items() if isinstance(v, torch.Tensor)} for t in targets]
    return cfg, normalize(images), targets


def test_mask_loss_decreases_on_one_batch(synth):
    torch.manual_seed(0)
    cfg, x, targets = one_batch(synth)
    assert all(t["masks"].shape == (len(t["labels"]), 96, 96) for t in targets)
    model = build_model(cfg.model)
    crit = build_criterion(cfg, model)
    assert isinstance(crit, RTMDetInsCriterion) and crit.mask_weight == 2.0
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0)
    history = []
    # 20 steps: after 10 the Dice loss had fallen by only 14-18 % depending on the CPU (it
    # passed on AMD Zen 4 and failed on an Intel Xeon with AMX), too close to the bound; after
    # 20 it is down ~60 % on the Intel machine.
    for _ in range(20):
        losses = crit(*model(x), targets)
        opt.zero_grad()
        losses["loss"].backward()
        opt.step()
        history.append({k: v.item() for k, v in losses.items()})
    assert all(math.isfinite(h["loss"]) for h in history)
    for h in history:
        assert h["loss"] == pytest.approx(h["loss_cls"] + h["loss_bbox"] + h["loss_mask"],
                                          rel=1e-5)
        assert 0 < h["loss_mask"] <= 2.0 + 1e-6        # 2 × Dice, Dice ∈ [0, 1]
    # The positives change as the boxes move, so the curve is noisy: compare the last three.
    last = sum(h["loss_mask"] for h in history[-3:]) / 3
    assert last < 0.85 * history[0]["loss_mask"], [round(h["loss_mask"], 4) for h in history]


def test_rtmdet_train_ins_end_to_end(synth, tmp_path):
    work = tmp_path / "run"
    rc = cli_main(["train", "rtmdet-ins-tiny", f"data.root={synth}", "data.img_size=96",
                   "data.num_workers=0", "data.mosaic_cache_size=4", "data.mixup_cache_size=2",
                   "model.head.num_classes=8", "train.batch_size=2", "train.epochs=1",
                   "train.max_iters_per_epoch=2", "train.warmup_iters=1", "train.flat_epochs=1",
                   "train.stage2_epochs=0", "train.device=cpu", f"work_dir={work}", "seed=1"])
    assert rc == 0
    assert (work / "final.pt").exists()
    with open(work / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    for r in rows:
        for k in ("loss", "loss_cls", "loss_bbox", "loss_mask"):
            assert math.isfinite(float(r[k])), (k, r)
        assert float(r["loss_mask"]) > 0
