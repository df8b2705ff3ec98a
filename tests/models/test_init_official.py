"""Our initialisation against the official one (issue: training from scratch starts where the
official code starts).

``tests/reference/init_stats.json`` holds, per preset and per official state-dict tensor, the
mean, std and mean-absolute-deviation/std of the official model after ``init_weights()``,
averaged over seeds with their spread, and the official loss at init on a fixed batch
(``make reference`` regenerates it). Our tensors are matched to the official ones through the
official-key importer itself: a state dict in the official layout whose every tensor holds its
own index is loaded with ``rtmdet.load_mmdet_weights`` and read back.

Agreement "within sampling error": each statistic of ours (one seed) is within ``Z`` standard
errors of the official average, the standard error being the larger of the spread the official
init shows over seeds and the textbook error for ``n`` i.i.d. draws (std/√n for the mean,
std/√(2n) for the std, 1/√n for the ratio); constant tensors (no spread) must match to the
stored 5 significant digits.
"""
from __future__ import annotations

import json
import math
from functools import lru_cache

import pytest
import torch

import rtmdet
from rtmdet.losses.build import build_criterion
from tests.helpers.reference import PRESETS, REF_DIR, _reference, recipe

Z = 6.0


@lru_cache(maxsize=1)
def _official() -> dict:
    return json.loads((REF_DIR / "init_stats.json").read_text())


def _stats(t: torch.Tensor) -> tuple[float, float, float]:
    t = t.detach().double().flatten()
    mean = t.mean()
    std = t.std(unbiased=False) if t.numel() > 1 else torch.zeros((), dtype=torch.float64)
    mad = ((t - mean).abs().mean() / std).item() if std > 0 else 0.0
    return mean.item(), std.item(), mad


def _official_index_of_ours(preset: str) -> dict[str, int]:
    """Our state-dict key → index of its official tensor in the init_stats rows."""
    ref = _reference(preset)
    rows = [k for k, _, dt in ref["layout"] if k not in ref["aliases"]
            and getattr(torch, dt).is_floating_point]
    index = {k: i for i, k in enumerate(rows)}
    markers = {}
    for key, shape, dt in ref["layout"]:
        dtype = getattr(torch, dt)
        marker = float(index.get(ref["aliases"].get(key, key), -1))
        markers[key] = torch.full(shape, marker if dtype.is_floating_point else 0, dtype=dtype)
    model = rtmdet.build_model(preset)
    rtmdet.load_mmdet_weights(model, markers)
    return {k: int(v.flatten()[0].item()) for k, v in model.state_dict().items()
            if v.is_floating_point()}


def differing_tensors(preset: str, seed: int = 0, variant: str | None = None) -> list[str]:
    """Our tensors whose init statistics disagree with the official ones, with the reason.
    ``variant="conv_module"``: ours with ``model.backbone.init=conv_module`` against the official
    model built with ``backbone.init_cfg=None``."""
    official = _official()["backbone_init_cfg_none"] if variant else _official()
    rows = official["presets"][preset]["rows"]
    torch.manual_seed(seed)
    overrides = [f"model.backbone.init={variant}"] if variant else None
    ours = rtmdet.build_model(preset, overrides).state_dict()
    bad = []
    for key, idx in _official_index_of_ours(preset).items():
        m, s, r, m_sd, s_sd, r_sd, n = rows[idx]
        om, os_, orr = _stats(ours[key])
        if m_sd == 0 and s_sd == 0:      # deterministic (a constant), stored to 5 digits
            ok = abs(om - m) <= 1e-6 + 1e-4 * abs(m) and abs(os_ - s) <= 1e-6 + 1e-4 * s
        else:
            se_m = max(m_sd, s / math.sqrt(n))
            se_s = max(s_sd, s / math.sqrt(2 * n))
            se_r = max(r_sd, 1 / math.sqrt(n))
            ok = abs(om - m) <= Z * se_m and abs(os_ - s) <= Z * se_s and abs(orr - r) <= Z * se_r
        if not ok:
            bad.append(f"{key}: ours mean {om:.4g} std {os_:.4g} mad {orr:.3f}, "
                       f"official {m:.4g} / {s:.4g} / {r:.3f}")
    return bad


@pytest.mark.parametrize("preset", PRESETS)
def test_init_statistics_match_official(preset):
    off = _official()["presets"][preset]
    assert off["keys"] == len(off["rows"])
    bad = differing_tensors(preset)
    assert not bad, f"{len(bad)} tensor(s) differ:\n" + "\n".join(bad[:20])


@pytest.mark.parametrize("preset", ["rtmdet-tiny", "rtmdet-l", "rtmdet-ins-tiny", "rtmdet-r-tiny"])
def test_conv_module_backbone_init_matches_official_without_init_cfg(preset):
    assert preset in _official()["backbone_init_cfg_none"]["presets"]
    bad = differing_tensors(preset, variant="conv_module")
    assert not bad, f"{len(bad)} tensor(s) differ:\n" + "\n".join(bad[:20])


def _loss_at_init(seed: int, variant: str | None = None) -> dict[str, float]:
    cfg = rtmdet.load_config("rtmdet-tiny",
                             [f"model.backbone.init={variant}"] if variant else None)
    torch.manual_seed(seed)
    model = rtmdet.build_model(cfg).train()
    images, targets = recipe.make_batch()
    losses = build_criterion(cfg, model)(*model.forward_raw(images), targets)
    return {k: losses[k].item() for k in ("loss_cls", "loss_bbox")}


@pytest.mark.parametrize("variant", [None, "conv_module"])
def test_loss_at_init_within_official_spread(variant):
    """Ours with its own init (several seeds) against the official init over its seeds: our
    mean lies inside the official range widened by one official standard deviation."""
    off = (_official()["backbone_init_cfg_none"] if variant else _official())["loss_at_init"]
    ours = [_loss_at_init(s, variant) for s in range(4)]
    for k in ("loss_cls", "loss_bbox"):
        values = torch.tensor(off[k], dtype=torch.float64)
        lo, hi, sd = values.min().item(), values.max().item(), values.std().item()
        mean = sum(o[k] for o in ours) / len(ours)
        assert lo - sd <= mean <= hi + sd, \
            f"{k}: ours {mean:.4g} vs official {lo:.4g}..{hi:.4g} (sd {sd:.2g})"
