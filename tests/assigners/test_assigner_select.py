"""``train.assigner.type``: the config fields, the dispatch (the default is exactly the dynamic
soft-label assigner as before) and every type training through ``build_criterion``."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from rtmdet.assigners.dsla import DynamicSoftLabelAssigner
from rtmdet.assigners import (ASSIGNERS, ATSSAssigner, SimOTAAssigner, TaskAlignedAssigner,
                              build_assigner)
from rtmdet.config import AssignerConfig, ConfigError, load_config
from rtmdet.losses.build import build_criterion
from tests.helpers.assigner_checks import random_batch

torch.set_num_threads(1)


def test_default_is_the_dynamic_soft_label_assigner_unchanged():
    cfg = AssignerConfig()
    assert cfg.type == "dsla"
    a = build_assigner(cfg)
    assert type(a) is DynamicSoftLabelAssigner
    assert vars(a) == vars(DynamicSoftLabelAssigner.from_config(cfg))
    assert vars(a) == vars(DynamicSoftLabelAssigner())
    for dtype in (torch.float64, torch.float32):
        logits, priors, boxes, gts, labels, valid, _ = random_batch(3, g=7)
        args = (logits.to(dtype), priors.to(dtype), boxes.to(dtype), gts.to(dtype), labels, valid)
        r, ref = a.assign(*args), DynamicSoftLabelAssigner().assign(*args)
        assert torch.equal(r.gt_inds, ref.gt_inds) and torch.equal(r.ious, ref.ious)
        assert torch.equal(r.labels, ref.labels)


def test_each_type_builds_its_assigner_with_the_config_values():
    cfg = AssignerConfig(type="simota", max_gts_per_chunk=5,
                         simota={"center_radius": 1.5, "candidate_topk": 7, "iou_weight": 2.0,
                                 "cls_weight": 0.5})
    s = build_assigner(cfg)
    assert isinstance(s, SimOTAAssigner)
    assert (s.center_radius, s.topk, s.iou_weight, s.cls_weight, s.max_gts_per_chunk) == \
        (1.5, 7, 2.0, 0.5, 5)
    a = build_assigner(AssignerConfig(type="atss", atss={"topk": 4, "anchor_scale": 5.0}))
    assert isinstance(a, ATSSAssigner) and (a.topk, a.anchor_scale) == (4, 5.0)
    t = build_assigner(AssignerConfig(type="task_aligned",
                                      task_aligned={"topk": 9, "alpha": 0.5, "beta": 4.0,
                                                    "target": "alignment"}))
    assert isinstance(t, TaskAlignedAssigner)
    assert (t.topk, t.alpha, t.beta, t.target) == (9, 0.5, 4.0, "alignment")
    assert set(ASSIGNERS) == {"dsla", "simota", "atss", "task_aligned"}


def test_documented_defaults():
    cfg = AssignerConfig()
    assert (cfg.simota.center_radius, cfg.simota.candidate_topk, cfg.simota.iou_weight,
            cfg.simota.cls_weight) == (2.5, 10, 3.0, 1.0)
    assert (cfg.atss.topk, cfg.atss.anchor_scale) == (9, 8.0)
    assert (cfg.task_aligned.topk, cfg.task_aligned.alpha, cfg.task_aligned.beta,
            cfg.task_aligned.target) == (13, 1.0, 6.0, "iou")


def test_config_overrides_and_one_line_errors():
    cfg = load_config("rtmdet-s", ["train.assigner.type=atss", "train.assigner.atss.topk=5"])
    assert cfg.train.assigner.type == "atss" and cfg.train.assigner.atss.topk == 5
    with pytest.raises(ConfigError, match="train.assigner.type"):
        load_config("rtmdet-s", ["train.assigner.type=ota"])
    with pytest.raises(ConfigError, match="train.assigner.simota.radius: unknown key"):
        load_config("rtmdet-s", ["train.assigner.simota.radius=2"])


@pytest.mark.parametrize("kind", ["simota", "atss", "task_aligned"])
def test_alternatives_refuse_rotated_geometry(kind):
    with pytest.raises(ValueError, match="axis-aligned"):
        build_assigner(AssignerConfig(type=kind), iou_fn=lambda a, b: None)
    cfg = load_config("rtmdet-s", ["model.type=rotated", f"train.assigner.type={kind}"])
    with pytest.raises(ValueError, match="axis-aligned"):
        build_criterion(cfg, SimpleNamespace(strides=(8, 16, 32)))


@pytest.mark.parametrize("kind,overrides", [("dsla", []), ("simota", []), ("atss", []),
                                            ("task_aligned", []),
                                            ("task_aligned", ["train.assigner.task_aligned."
                                                              "target=alignment"])])
def test_forward_backward_through_build_criterion(kind, overrides):
    cfg = load_config("rtmdet-s", [f"train.assigner.type={kind}", "model.head.num_classes=4",
                                   *overrides])
    crit = build_criterion(cfg, SimpleNamespace(strides=(8, 16, 32)))
    assert type(crit.assigner) is ASSIGNERS[kind]
    gen = torch.Generator().manual_seed(0)
    sizes = [(8, 8), (4, 4), (2, 2)]                     # a 64×64 input
    cls = [torch.randn(2, 4, h, w, generator=gen).requires_grad_() for h, w in sizes]
    reg = [(4 + 8 * torch.rand(2, 4, h, w, generator=gen)) * s for (h, w), s in
           zip(sizes, (1, 2, 4))]
    reg = [r.requires_grad_() for r in reg]
    targets = [{"boxes": torch.tensor([[4.0, 6, 40, 50], [30, 20, 60, 44]]),
                "labels": torch.tensor([1, 3])},
               {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}]
    out = crit(cls, reg, targets)
    assert all(torch.isfinite(v) for v in out.values())
    assert out["loss_bbox"].item() > 0                   # some positives were assigned
    out["loss"].backward()
    for t in cls + reg:
        assert t.grad is not None and torch.isfinite(t.grad).all()
    assert sum(r.grad.abs().sum() for r in reg) > 0
