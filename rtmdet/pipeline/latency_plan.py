"""Which paper-scale architectures the tables' latency claims need, and which pairs of them the
tables compare: the plan that :mod:`rtmdet.bench.paper_latency` times.

A variant's paper-scale model is its experiment resolved at paper scale with COCO's 80 classes
(as the paper's numbers are); two variants with the same resolved model section are one
architecture, measured once, whichever tables they appear in (``kernel_size/k5`` is
``stage_depth/d3663`` is ``backbone_neck_ratio/l_47``). Tables whose paper gives no latency, and
DOTA's rotated models (timed at 1024 px in the paper's own protocol), are left out.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable

from rtmdet.bench.paper_latency import Architecture

from .resolve import PAPER_SCALE, model_type, resolve
from .spec import Experiment


def has_latency_claim(exp: Experiment) -> bool:
    """Tables whose paper gives latency, with models timed at 640×640 (not DOTA's)."""
    return (exp.paper is not None and "latency_ms" in exp.paper.columns
            and model_type(exp, exp.baseline) != "rotated")


def arch_key(model: dict[str, Any]) -> str:
    """Content hash of the resolved model section: equal configs are one architecture."""
    return hashlib.sha256(json.dumps(model, sort_keys=True).encode()).hexdigest()[:12]


def architectures(experiments: Iterable[Experiment]) -> dict[str, Architecture]:
    """Distinct paper-scale architectures (80 COCO classes, as the paper's) of the tables
    with a latency claim, in first-use order."""
    out: dict[str, Architecture] = {}
    for exp in experiments:
        if not has_latency_claim(exp):
            continue
        for v in exp.variants:
            model = resolve(exp, v, 0, PAPER_SCALE, "coco").model.model_dump(mode="json")
            a = out.setdefault(arch_key(model), Architecture(arch_key(model), model))
            a.uses.append((exp.name, v))
    return out


def comparisons(experiments: Iterable[Experiment],
                archs: dict[str, Architecture]) -> list[tuple[str, str]]:
    """Distinct (variant, reference) architecture pairs the tables compare (a variant built like
    its reference is no comparison: its ratio is 1 by construction)."""
    key = {u: a.key for a in archs.values() for u in a.uses}
    pairs: list[tuple[str, str]] = []
    for exp in experiments:
        for v, var in exp.variants.items():
            ref = var.compare_to or exp.baseline
            p = (key.get((exp.name, v)), key.get((exp.name, ref)))
            if None not in p and p[0] != p[1] and p not in pairs:
                pairs.append(p)
    return pairs
