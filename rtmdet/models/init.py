"""The official RTMDet initialisation, every rule in one place (called by
:meth:`rtmdet.models.detector.RTMDet.init_weights`, which ``build_model`` runs).

Measured against the official mmdetection 3.3.0 / mmrotate 1.x models after their
``init_weights()`` (per-tensor mean, std and shape of the distribution over seeds:
``tests/reference/init_stats.json``, checked by ``tests/test_init_official.py``). The rules, each
with the official code path it reproduces:

1. **Backbone and neck convolutions** (``backbone_init="cspnext_default"``, the default):
   Kaiming-uniform, ``a=√5``, fan_in, and *zero bias* — the ``init_cfg`` that ``CSPNeXt`` and
   ``CSPNeXtPAFPN`` declare as their class default (``dict(type='Kaiming', layer='Conv2d',
   a=sqrt(5), distribution='uniform', mode='fan_in', nonlinearity='leaky_relu')``, bias 0).
   It is what the official configs that train from scratch (det/Ins l, m, x) get, and what
   tiny/s/R get once their ImageNet ``Pretrained`` entry is removed. The weight distribution is
   PyTorch's own default; the one visible difference is the channel-attention 1×1 conv bias
   (the only backbone conv with a bias): 0, not PyTorch's U(±1/√fan_in).
2. **Backbone convolutions, ``backbone_init="conv_module"``**: what a derived config that sets
   ``backbone.init_cfg=None`` (the usual way to drop the ImageNet checkpoint) gets: the class
   default is skipped and each conv–BN–activation keeps ``ConvModule``'s construction-time
   init, Kaiming-normal fan_out with ReLU gain (std √(2/fan_out)); the channel-attention conv
   (a bare ``nn.Conv2d``, no ``ConvModule``) keeps PyTorch's default weight *and* bias. The neck
   is unaffected (its own class default applies). Kept because that is the starting point of the
   issue-19 side-by-side runs (loss at init 5× lower than PyTorch defaults on real images).
3. **BatchNorm everywhere**: weight 1, bias 0, running mean 0, running var 1 (``ConvModule``
   ``constant_init(norm, 1, bias=0)``; identical to PyTorch's default).
4. **Head towers and every head conv** (det, Ins, R; Ins kernel towers and mask-feature
   branch included): N(0, 0.01²), bias 0 — the heads' ``normal_init(std=0.01)`` over all their
   ``Conv2d``: small outputs, so the prediction biases below set the starting point.
5. **Classifier bias**: −log((1 − 0.01)/0.01) ≈ −4.595 (``bias_init_with_prob(0.01)``): every
   prior starts at probability 0.01, so the focal-type loss is not swamped by the negatives.
6. **Ins distance conv bias: 1** (``normal_init(rtm_reg, std=0.01, bias=1)``): ReLU distances,
   so every prior starts with a non-degenerate box of ~1 stride instead of ReLU(0) = 0.
7. **R angle conv**: N(0, 0.01²), bias 0 (``normal_init(rtm_ang, std=0.01)``): every box starts
   axis-aligned.
"""
from __future__ import annotations

import math
from typing import Literal

from torch import nn

from rtmdet.utils.seeding import seeded

BackboneInit = Literal["cspnext_default", "conv_module"]


def _kaiming_uniform_zero_bias(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), mode="fan_in",
                                     nonlinearity="leaky_relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _conv_module_init(backbone: nn.Module) -> None:
    attention = {id(m.fc) for m in backbone.modules() if hasattr(m, "fc")
                 and isinstance(getattr(m, "fc"), nn.Conv2d)}
    for m in backbone.modules():
        if isinstance(m, nn.Conv2d):
            if id(m) in attention:
                m.reset_parameters()                   # PyTorch default, bias included
            else:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)


def _batchnorm(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def init_official(model: nn.Module, backbone_init: BackboneInit = "cspnext_default",
                  seed: int | None = None) -> None:
    """Initialise ``model`` (an RTMDet, RTMDet-Ins or RTMDet-R) by rules 1–7 above.

    With ``seed``, backbone, neck and head each draw from their own stream
    (:func:`rtmdet.utils.seeding.seeded`): variants that differ in one component start the others
    from identical weights, so an ablation's per-seed differences are paired. Without it, the
    global RNG is used in that order (what the official code does)."""
    if backbone_init not in ("cspnext_default", "conv_module"):
        raise ValueError(f"backbone_init must be 'cspnext_default' or 'conv_module', "
                         f"got {backbone_init!r}")
    with seeded(seed, "backbone"):
        if backbone_init == "cspnext_default":
            _kaiming_uniform_zero_bias(model.backbone)
        else:
            _conv_module_init(model.backbone)
    with seeded(seed, "neck"):
        _kaiming_uniform_zero_bias(model.neck)
    _batchnorm(model)
    with seeded(seed, "head"):
        model.head.init_weights()                     # rules 4–6 (RTMDetHead / RTMDetInsHead)
        if hasattr(model.head, "init_angle"):
            model.head.init_angle()                   # rule 7
