"""Head outputs + ground truth → RTMDet training losses (SPEC §5, §6).

Flattens the per-level raw outputs, decodes boxes (unclipped, so the IoU target measures the raw
prediction), runs the batched assigner on detached copies, then QFL over every prior and class
plus IoU-weighted GIoU over positives, both divided by one normaliser: the batch sum of positive
IoU targets, averaged over processes and clamped ≥ 1. Averaging it (rather than each worker using
its own) keeps every worker's gradient on the same scale, so DDP's gradient mean equals the
single-process large-batch gradient.
"""
from __future__ import annotations

import torch
import torch.distributed as dist

from rtmdet.assigners.dsla import AssignResult, DynamicSoftLabelAssigner
from rtmdet.assigners import build_assigner
from rtmdet.geometry.boxes import distance2bbox, make_priors
from .functional import giou_loss, quality_focal_loss
from rtmdet.models.postprocess import flatten_levels


def reduce_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean over processes when torch.distributed is initialised; identity otherwise."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    x = x.clone()
    dist.all_reduce(x)
    return x / dist.get_world_size()


def pad_targets(targets: list[dict[str, torch.Tensor]], num_classes: int,
                device: torch.device, dtype: torch.dtype, box_key: str = "boxes",
                box_dim: int = 4
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """List of per-image ``boxes`` (N, 4) / ``labels`` (N,) [/ ``centers`` (N, 2)] → padded
    (B, G, 4), (B, G), valid mask (B, G) [, (B, G, 2)]. The rotated criterion pads
    ``rboxes`` (N, 5) the same way (``box_key``, ``box_dim``)."""
    g = max([len(t["labels"]) for t in targets], default=0)
    b = len(targets)
    boxes = torch.zeros((b, g, box_dim), device=device, dtype=dtype)
    labels = torch.zeros((b, g), device=device, dtype=torch.long)
    valid = torch.zeros((b, g), device=device, dtype=torch.bool)
    with_centers = any("centers" in t for t in targets)
    centers = torch.zeros((b, g, 2), device=device, dtype=dtype) if with_centers else None
    for i, t in enumerate(targets):
        if box_key not in t:
            raise ValueError(f"target {i}: needs '{box_key}' ({box_dim} values per object)")
        tb, tl = t[box_key], t["labels"]
        n = len(tl)
        if tb.shape != (n, box_dim):
            raise ValueError(f"target {i}: {box_key} must be ({n}, {box_dim}), "
                             f"got {tuple(tb.shape)}")
        if n and (tl.min() < 0 or tl.max() >= num_classes):
            raise ValueError(f"target {i}: labels must be in [0, {num_classes}), "
                             f"got {tl.min().item()}..{tl.max().item()}")
        boxes[i, :n] = tb.to(device, dtype)
        labels[i, :n] = tl.to(device)
        valid[i, :n] = True
        if centers is not None:
            if "centers" not in t and n:
                raise ValueError(f"target {i}: 'centers' given for some images but not this one")
            if n:
                centers[i, :n] = t["centers"].to(device, dtype)
    return boxes, labels, valid, centers


class RTMDetCriterion:
    def __init__(self, assigner: DynamicSoftLabelAssigner, strides: tuple[int, ...] = (8, 16, 32),
                 qfl_beta: float = 2.0, cls_weight: float = 1.0, bbox_weight: float = 2.0,
                 giou_eps: float = 1e-6) -> None:
        self.assigner = assigner
        self.strides = tuple(strides)
        self.qfl_beta = qfl_beta
        self.cls_weight = cls_weight
        self.bbox_weight = bbox_weight
        self.giou_eps = giou_eps

    @classmethod
    def from_config(cls, train_cfg, strides: tuple[int, ...]) -> "RTMDetCriterion":
        """From a :class:`~rtmdet.config.TrainConfig` (its ``assigner``, of any
        ``train.assigner.type``, and ``loss``)."""
        loss = train_cfg.loss
        return cls(build_assigner(train_cfg.assigner), tuple(strides),
                   qfl_beta=loss.qfl_beta, cls_weight=loss.cls_weight,
                   bbox_weight=loss.bbox_weight, giou_eps=loss.giou_eps)

    def __call__(self, cls_scores: list[torch.Tensor], bbox_preds: list[torch.Tensor],
                 targets: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """``cls_scores`` per level (B, C, H, W) logits, ``bbox_preds`` per level (B, 4, H, W)
        distances in pixels; returns weighted ``loss_cls``, ``loss_bbox`` and their sum ``loss``.
        """
        b, c = self.check_inputs({"cls": cls_scores, "bbox": bbox_preds}, targets)
        device = cls_scores[0].device
        # Losses in float32 even under AMP: QFL's σ^β and the box areas lose too much in half.
        logits, dists = flatten_levels(cls_scores).float(), flatten_levels(bbox_preds).float()
        points, strides = make_priors([tuple(x.shape[-2:]) for x in cls_scores], self.strides,
                                      device=device)
        decoded = distance2bbox(points[None], dists)                           # (B, P, 4)
        gt_boxes, gt_labels, gt_valid, gt_centers = pad_targets(targets, c, device, torch.float32)
        result = self.assign(logits, torch.cat([points, strides[:, None]], 1), decoded,
                             gt_boxes, gt_labels, gt_valid, gt_centers)
        return self.losses(logits, decoded, gt_boxes, result)

    def check_inputs(self, outputs: dict[str, list[torch.Tensor]],
                     targets: list[dict[str, torch.Tensor]]) -> tuple[int, int]:
        """Every head output has one tensor per stride and there is one target dict per image;
        returns (batch, classes) of the first output. Shared by the det, Ins and R criteria."""
        n = len(self.strides)
        if any(len(levels) != n for levels in outputs.values()):
            got = ", ".join(f"{len(levels)} {name}" for name, levels in outputs.items())
            raise ValueError(f"expected {n} levels (strides {self.strides}), got {got} outputs")
        b, c = next(iter(outputs.values()))[0].shape[:2]
        if len(targets) != b:
            raise ValueError(f"{len(targets)} targets for a batch of {b} images")
        return b, c

    def assign(self, logits, priors, decoded, gt_boxes, gt_labels, gt_valid, gt_centers
               ) -> AssignResult:
        return self.assigner.assign(logits.detach(), priors, decoded.detach(), gt_boxes,
                                    gt_labels, gt_valid, gt_centers)

    def box_loss(self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor
                 ) -> torch.Tensor:
        """Summed, IoU-target-weighted box loss of the positives (GIoU here; the rotated
        criterion swaps in 1 − rotated IoU, everything else is shared)."""
        return giou_loss(pred, target, weight, self.giou_eps).sum()

    def losses(self, logits: torch.Tensor, decoded: torch.Tensor, gt_boxes: torch.Tensor,
               result: AssignResult) -> dict[str, torch.Tensor]:
        c = logits.shape[-1]
        pos = result.pos_mask
        normaliser = reduce_mean(result.ious[pos].sum().detach()).clamp(min=1)
        loss_cls = quality_focal_loss(logits.reshape(-1, c), result.labels.reshape(-1),
                                      result.ious.reshape(-1), self.qfl_beta).sum()
        img_idx = pos.nonzero()[:, 0]
        pos_targets = gt_boxes[img_idx, result.gt_inds[pos]]
        # Empty positives still touch the graph so DDP sees every regression parameter used.
        loss_bbox = self.box_loss(decoded[pos], pos_targets, result.ious[pos]) \
            if pos.any() else decoded.sum() * 0
        loss_cls = loss_cls / normaliser * self.cls_weight
        loss_bbox = loss_bbox / normaliser * self.bbox_weight
        return {"loss_cls": loss_cls, "loss_bbox": loss_bbox, "loss": loss_cls + loss_bbox}


def build_criterion(cfg, model):
    """The loss of ``cfg.model.type``: called as ``criterion(*model_outputs, targets)``."""
    if cfg.model.type == "det":
        return RTMDetCriterion.from_config(cfg.train, model.strides)
    if cfg.model.type == "ins":
        from .ins_criterion import RTMDetInsCriterion
        return RTMDetInsCriterion.from_config(cfg.train, model.strides, cfg.model.head)
    if cfg.model.type == "rotated":
        from .rotated_criterion import RotatedRTMDetCriterion
        return RotatedRTMDetCriterion.from_config(cfg.train, model.strides)
    raise NotImplementedError(f"training model.type={cfg.model.type!r} is not implemented yet")
