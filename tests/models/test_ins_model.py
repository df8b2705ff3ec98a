"""RTMDet-Ins: equivalence with the official model on its reference tensors (fixtures/README.md),
official parameter counts (SPEC §9), and hand-computed cases for the mask maths."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import rtmdet
from tests.helpers.fixtures import load_fixture
from rtmdet.geometry.masks import (dynamic_mask_logits, logits_to_masks, mask_centroids,
                          parse_dynamic_params)

OFFICIAL_PARAMS = {"tiny": 5_638_187, "s": 10_183_311, "m": 27_575_111, "l": 57_365_663,
                   "x": 102_703_767}


@pytest.fixture(scope="module")
def fixture():
    return load_fixture("rtmdet_ins_tiny.pt")


@pytest.fixture(scope="module")
def model32(fixture):
    model = rtmdet.build_model("rtmdet-ins-tiny")
    rtmdet.load_mmdet_weights(model, fixture["state_dict"])
    return model.eval()


def unpack_masks(packed: torch.Tensor, shape) -> torch.Tensor:
    n, h, w = shape
    bits = (packed.unsqueeze(-1) >> torch.arange(7, -1, -1, dtype=torch.uint8)) & 1
    return bits.reshape(n, -1)[:, :h * w].reshape(n, h, w).bool()


def _max_diff(ours, ref) -> float:
    return max((a.double() - b.double()).abs().max().item() for a, b in zip(ours, ref))


def test_float64_raw_outputs_within_1e6(fixture):
    model = rtmdet.build_model("rtmdet-ins-tiny")
    rtmdet.load_mmdet_weights(model, fixture["state_dict"])
    model = model.double().eval()
    with torch.no_grad():
        cls_scores, bbox_preds, kernel_preds, mask_feats = model.forward_raw(
            fixture["input"].double())
    ref = fixture["raw64"]
    for ours, key in ((cls_scores, "cls_scores"), (bbox_preds, "bbox_preds"),
                      (kernel_preds, "kernel_preds")):
        assert [o.shape for o in ours] == [t.shape for t in ref[key]]
        assert _max_diff(ours, ref[key]) <= 1e-6, key
    assert mask_feats.shape == ref["mask_feats"].shape == (2, 8, 40, 40)
    assert _max_diff([mask_feats], [ref["mask_feats"]]) <= 1e-6


def _match(ours: dict, ref: dict) -> list[int]:
    """For each official detection (score order) the index of ours with the same label, box
    within 0.1 px and score within 1e-3, one-to-one. Order is compared up to near-ties: float32
    rounding (official vs itself drifts ~1e-3 on logits) may swap two detections whose scores
    differ by ~1e-6, which changes nothing else."""
    taken: set[int] = set()
    order = []
    for i in range(len(ref["scores"])):
        ok = ((ours["labels"] == ref["labels"][i])
              & ((ours["boxes"] - ref["bboxes"][i]).abs().amax(1) <= 0.1)
              & ((ours["scores"] - ref["scores"][i]).abs() <= 1e-3))
        cands = [j for j in torch.nonzero(ok).flatten().tolist() if j not in taken]
        assert cands, f"official detection {i} (label {int(ref['labels'][i])}) not found"
        # Among equivalent candidates prefer the one at the same rank.
        j = i if i in cands else cands[0]
        taken.add(j)
        order.append(j)
    return order


def test_float32_predict_matches_official_detections_and_masks(fixture, model32):
    cfg = fixture["meta"]["test_cfg"]
    dets = model32.predict(fixture["input"], score_thr=cfg["score_thr"],
                           iou_thr=cfg["nms"]["iou_threshold"], max_per_img=cfg["max_per_img"],
                           nms_pre=cfg["nms_pre"], mask_thr=cfg["mask_thr_binary"],
                           use_torchvision=False)
    from rtmdet.models.fuse import _FAST_CACHE
    assert model32 in _FAST_CACHE          # the default (BN-folded, channels-last) path ran
    assert len(dets) == len(fixture["dets"]) == 2
    for ours, ref in zip(dets, fixture["dets"]):
        n = len(ref["scores"])
        assert len(ours["scores"]) == n > 0
        assert torch.all(ours["scores"][:-1] >= ours["scores"][1:])
        order = _match(ours, ref)
        # Only near-ties may be permuted: ranks differ where official scores differ < 1e-3.
        moved = [i for i, j in enumerate(order) if i != j]
        for i in moved:
            assert abs(ref["scores"][i] - ref["scores"][order[i]]) < 1e-3
        masks = ours["masks"][order]
        ref_masks = unpack_masks(ref["masks_packed"], tuple(ref["masks_shape"]))
        assert masks.dtype == torch.bool and masks.shape == ref_masks.shape == (n, 320, 320)
        assert 0.05 < ref_masks.float().mean() < 0.95          # a non-trivial comparison
        assert (masks != ref_masks).float().mean() <= 1e-3


def test_param_counts_equal_official():
    for size, official in OFFICIAL_PARAMS.items():
        model = rtmdet.build_model(f"rtmdet-ins-{size}")
        assert sum(p.numel() for p in model.parameters()) == official, size


def test_kernel_towers_per_level_and_official_quirks(model32, fixture):
    head = model32.head
    # cls convs shared (SepBN), kernel convs not shared; the official regression tower is the
    # classification tower itself (its checkpoint tensors are identical copies).
    assert head.cls_convs[1][0].conv is head.cls_convs[0][0].conv
    assert head.cls_convs[1][0].bn is not head.cls_convs[0][0].bn
    assert head.kernel_convs[1][0].conv is not head.kernel_convs[0][0].conv
    assert head.reg_convs is head.cls_convs
    sd = fixture["state_dict"]
    assert torch.equal(sd["bbox_head.reg_convs.2.1.bn.running_var"],
                       sd["bbox_head.cls_convs.2.1.bn.running_var"])
    # Distances are ReLU(·)·stride: never negative; bias init is 1 on a fresh model.
    assert all((b >= 0).all() for b in fixture["raw"]["bbox_preds"])
    fresh = rtmdet.build_model("rtmdet-ins-tiny").head
    assert all(torch.all(c.bias == 1.0) for c in fresh.rtm_reg)


def test_reusing_cls_feats_gives_identical_outputs(model32, fixture):
    """The official forward runs the shared tower twice; running it once changes nothing."""
    fast = rtmdet.build_model("rtmdet-ins-tiny")
    fast.head.reuse_cls_feats = True
    fast.load_state_dict(model32.state_dict())
    x = fixture["input"][:1, :, :96, :128]
    with torch.no_grad():
        a, b = model32.forward_raw(x), fast.eval().forward_raw(x)
    for ours, theirs in zip(a[:3], b[:3]):
        assert all(torch.equal(o, t) for o, t in zip(ours, theirs))
    assert torch.equal(a[3], b[3])


def _pack(layers: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Official layout: all weights (out, in) row-major, then all biases."""
    return torch.cat([w.reshape(-1) for w, _ in layers] + [b for _, b in layers])


def test_dynamic_convs_equal_explicit_per_pixel_mlp():
    g = torch.Generator().manual_seed(0)
    proto = torch.randn(8, 5, 6, generator=g, dtype=torch.float64)
    points = torch.tensor([[16.0, 8.0], [32.0, 0.0]], dtype=torch.float64)
    strides = torch.tensor([8.0, 32.0], dtype=torch.float64)
    nets = []
    for _ in range(2):
        nets.append([(torch.randn(8, 10, generator=g, dtype=torch.float64),
                      torch.randn(8, generator=g, dtype=torch.float64)),
                     (torch.randn(8, 8, generator=g, dtype=torch.float64),
                      torch.randn(8, generator=g, dtype=torch.float64)),
                     (torch.randn(1, 8, generator=g, dtype=torch.float64),
                      torch.randn(1, generator=g, dtype=torch.float64))])
    kernels = torch.stack([_pack(n) for n in nets])
    assert kernels.shape == (2, 169)
    logits = dynamic_mask_logits(proto, kernels, points, strides, mask_stride=8)
    assert logits.shape == (2, 5, 6)
    for k, net in enumerate(nets):
        for i, j in [(0, 0), (1, 2), (4, 5), (3, 1)]:
            # grid point (8j, 8i); relative coordinate = (prior − grid) / (prior stride · 8)
            rel = torch.tensor([(points[k, 0] - 8 * j) / (strides[k] * 8),
                                (points[k, 1] - 8 * i) / (strides[k] * 8)], dtype=torch.float64)
            v = torch.cat([rel, proto[:, i, j]])
            v = torch.relu(net[0][0] @ v + net[0][1])
            v = torch.relu(net[1][0] @ v + net[1][1])
            v = net[2][0] @ v + net[2][1]
            assert torch.allclose(logits[k, i, j], v[0], atol=1e-12)
    weights, biases = parse_dynamic_params(kernels)
    assert [w.shape for w in weights] == [(16, 10, 1, 1), (16, 8, 1, 1), (2, 8, 1, 1)]
    assert [b.shape for b in biases] == [(16,), (16,), (2,)]
    with pytest.raises(ValueError, match="169"):
        parse_dynamic_params(torch.zeros(1, 160))


def test_fixture_mask_logits_from_fixture_kernels(fixture):
    """Our dynamic convs on the official float64 prototypes reproduce the official per-
    detection low-res logits (float32 run), given its kernels and priors."""
    ref = fixture["dets"][1]
    logits = dynamic_mask_logits(fixture["raw"]["mask_feats"][1], ref["kernels"],
                                 ref["priors"][:, :2], ref["priors"][:, 2])
    rel = (logits - ref["mask_logits_lowres"]).abs().max() / ref["mask_logits_lowres"].abs().max()
    assert rel < 1e-5


def test_mask_centroids_hand_computed():
    masks = torch.zeros(3, 4, 5, dtype=torch.bool)
    masks[0, 1, 1] = masks[0, 1, 3] = masks[0, 3, 3] = True   # x (1+3+3)/3, y (1+1+3)/3
    masks[1, :, 4] = True                                     # x 4, y 1.5
    c = mask_centroids(masks)
    assert torch.allclose(c, torch.tensor([[7 / 3, 5 / 3], [4.0, 1.5], [0.0, 0.0]]))
    fb = torch.tensor([[9.0, 9.0], [9.0, 9.0], [2.5, 1.0]])
    c = mask_centroids(masks, fallback=fb)
    assert torch.allclose(c[2], torch.tensor([2.5, 1.0]))
    assert torch.allclose(c[:2], torch.tensor([[7 / 3, 5 / 3], [4.0, 1.5]]))
    weights = torch.zeros(1, 2, 3)
    weights[0, 0, 0], weights[0, 1, 2] = 3.0, 1.0                # weighted: (0·3 + 2·1)/4
    assert torch.allclose(mask_centroids(weights), torch.tensor([[0.5, 0.25]]))
    with pytest.raises(ValueError, match="masks must be"):
        mask_centroids(torch.zeros(4, 5))


def test_logits_to_masks_crop_and_letterbox():
    logits = torch.tensor([[[-1.0, 2.0], [3.0, -4.0]]])       # (1, 2, 2) at stride 8
    up = F.interpolate(logits[None], scale_factor=8, mode="bilinear", align_corners=False)[0]
    m = logits_to_masks(logits, 8, crop=(12, 10))
    assert m.shape == (1, 12, 10) and torch.equal(m, up[:, :12, :10] > 0)
    assert m[0, 0, 0].item() is False and m[0, 15 - 4, 0].item() is True
    # Letterbox of an original 30×20 image resized by 0.5: canvas 16 → 32, cropped to 30×20.
    m = logits_to_masks(logits, 8, ori_shape=(30, 20), scale=0.5)
    big = F.interpolate(up[None], size=[32, 32], mode="bilinear", align_corners=False)[0]
    assert m.shape == (1, 30, 20) and torch.equal(m, big[:, :30, :20] > 0)
    assert logits_to_masks(logits[:0], 8, crop=(12, 10)).shape == (0, 12, 10)


def test_predict_empty_and_gradients_flow(model32, fixture):
    x = fixture["input"][:1, :, :64, :96]
    dets = model32.predict(x, score_thr=1.0)
    assert dets[0]["masks"].shape == (0, 64, 96) and dets[0]["boxes"].shape == (0, 4)
    model = rtmdet.build_model("rtmdet-ins-tiny").train()   # fresh: keep model32's BN stats
    _, _, kernel_preds, mask_feats = model.forward_raw(x)
    k = kernel_preds[0][0, :, 1, 2][None]
    logits = dynamic_mask_logits(mask_feats[0], k, torch.tensor([[16.0, 8.0]]),
                                 torch.tensor([8.0]))
    logits.sum().backward()
    assert model.head.rtm_kernel[0].weight.grad.abs().sum() > 0
    assert model.head.mask_head.projection.weight.grad.abs().sum() > 0
    assert model.head.kernel_convs[0][0].conv.weight.grad.abs().sum() > 0
