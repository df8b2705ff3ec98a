"""The criterion of a config's ``model.type``: one explicit branch per type, no registry."""
from __future__ import annotations

from .criterion import RTMDetCriterion
from .ins_criterion import RTMDetInsCriterion
from .rotated_criterion import RotatedRTMDetCriterion


def build_criterion(cfg, model):
    """The loss of ``cfg.model.type``: called as ``criterion(*model_outputs, targets)``."""
    if cfg.model.type == "det":
        return RTMDetCriterion.from_config(cfg.train, model.strides)
    if cfg.model.type == "ins":
        return RTMDetInsCriterion.from_config(cfg.train, model.strides, cfg.model.head)
    if cfg.model.type == "rotated":
        return RotatedRTMDetCriterion.from_config(cfg.train, model.strides)
    raise NotImplementedError(f"training model.type={cfg.model.type!r} is not implemented yet")
