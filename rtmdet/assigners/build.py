"""``train.assigner.type`` → an assigner object, the one place the criteria dispatch on it.

Every assigner returns the same :class:`~rtmdet.assigners.dsla.AssignResult` (matched gt, IoU target,
label per prior), so the criteria need nothing but this call. ``geometry`` (``iou_fn``,
``inside_fn``, ``center_fn``) is the rotated detector's; only the dynamic soft-label assigner
takes it, and the alternatives refuse it rather than silently assign with axis-aligned IoU.
"""
from __future__ import annotations

from .atss import ATSSAssigner
from .dsla import DynamicSoftLabelAssigner
from .simota import SimOTAAssigner
from .task_aligned import TaskAlignedAssigner

ASSIGNERS = {"dsla": DynamicSoftLabelAssigner, "simota": SimOTAAssigner, "atss": ATSSAssigner,
             "task_aligned": TaskAlignedAssigner}


def build_assigner(cfg, **geometry):
    """From an :class:`~rtmdet.config.AssignerConfig`; ``type: dsla`` (the default) builds
    exactly what ``DynamicSoftLabelAssigner.from_config(cfg, **geometry)`` always built."""
    if cfg.type not in ASSIGNERS:
        raise ValueError(f"train.assigner.type: unknown assigner {cfg.type!r} "
                         f"(one of {', '.join(ASSIGNERS)})")
    return ASSIGNERS[cfg.type].from_config(cfg, **geometry)
