"""RTMDet-Ins training losses (SPEC §9): the detection losses plus a Dice loss on masks.

Two differences from :class:`~rtmdet.losses.criterion.RTMDetCriterion`:

- the assigner's centre prior is measured from each gt **mask's centre of mass** (a ring or an
  L-shape has its box centre off the object; the centroid is where the object's pixels are);
- every positive prior runs its own dynamic mask network on the image's prototypes, and the
  resulting stride-8 logits are upsampled ×2 to stride 4 and compared by Dice with the gt mask
  sampled at the centres of the stride-4 cells (``[2::4, 2::4]``). Supervising at stride 4 rather
  than 8 keeps thin parts of objects in the target, while the prototypes stay cheap at stride 8.

The Dice terms are averaged over positives (their count averaged over processes, clamped ≥ 1, as
the box normaliser) and weighted by ``mask_weight`` (2). The box branch is the detection one:
QFL + IoU-weighted GIoU on the ReLU·stride distances the Ins head predicts.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from rtmdet.assigners import build_assigner
from rtmdet.assigners.dsla import DynamicSoftLabelAssigner
from rtmdet.geometry.masks import dynamic_mask_logits, mask_centroids

from .criterion import RTMDetCriterion
from .functional import dice_loss
from .targets import reduce_mean


def with_mask_centers(targets: list[dict[str, torch.Tensor]]) -> list[dict[str, torch.Tensor]]:
    """Copies of ``targets`` with ``centers`` (N, 2) = centre of mass of each ``masks`` entry.

    A mask emptied by augmentation (a sliver clipped away while its box survived) has no centre
    of mass; it falls back to its box centre instead of the official (0, 0), which would make the
    centre prior pull the assignment toward the image corner.
    """
    out = []
    for i, t in enumerate(targets):
        if "masks" not in t:
            raise ValueError(f"target {i}: RTMDet-Ins training needs 'masks' (N, H, W); "
                             "set data.with_masks or model.type=ins")
        masks, boxes = t["masks"], t["boxes"]
        if masks.dim() != 3 or masks.shape[0] != boxes.shape[0]:
            raise ValueError(f"target {i}: masks must be ({boxes.shape[0]}, H, W), "
                             f"got {tuple(masks.shape)}")
        box_centres = ((boxes[:, :2] + boxes[:, 2:]) / 2).float()
        out.append({**t, "centers": mask_centroids(masks, fallback=box_centres)})
    return out


class RTMDetInsCriterion(RTMDetCriterion):
    def __init__(self, assigner: DynamicSoftLabelAssigner, strides: tuple[int, ...] = (8, 16, 32),
                 qfl_beta: float = 2.0, cls_weight: float = 1.0, bbox_weight: float = 2.0,
                 giou_eps: float = 1e-6, mask_weight: float = 2.0, mask_loss_stride: int = 4,
                 dice_eps: float = 5e-6, num_dyconvs: int = 3, dyconv_channels: int = 8) -> None:
        super().__init__(assigner, strides, qfl_beta, cls_weight, bbox_weight, giou_eps)
        if self.strides[0] % mask_loss_stride:
            raise ValueError(f"mask_loss_stride {mask_loss_stride} must divide the prototype "
                             f"stride {self.strides[0]}")
        self.mask_weight = mask_weight
        self.mask_loss_stride = mask_loss_stride
        self.dice_eps = dice_eps
        self.num_dyconvs = num_dyconvs
        self.dyconv_channels = dyconv_channels

    @classmethod
    def from_config(cls, train_cfg, strides: tuple[int, ...], head_cfg=None
                    ) -> "RTMDetInsCriterion":
        """From a :class:`~rtmdet.config.TrainConfig` (and the model's ``HeadConfig`` for the
        dynamic-conv shape)."""
        loss = train_cfg.loss
        extra = {} if head_cfg is None else {"num_dyconvs": head_cfg.num_dyconvs,
                                             "dyconv_channels": head_cfg.dyconv_channels}
        return cls(build_assigner(train_cfg.assigner), tuple(strides),
                   qfl_beta=loss.qfl_beta, cls_weight=loss.cls_weight,
                   bbox_weight=loss.bbox_weight, giou_eps=loss.giou_eps,
                   mask_weight=loss.mask_weight, **extra)

    def __call__(self, cls_scores: list[torch.Tensor], bbox_preds: list[torch.Tensor],
                 kernel_preds: list[torch.Tensor], mask_feats: torch.Tensor,
                 targets: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Raw Ins head outputs + targets (``boxes``, ``labels``, ``masks`` (N, S, S) bool on
        the input canvas) → weighted ``loss_cls``, ``loss_bbox``, ``loss_mask`` and ``loss``."""
        targets = with_mask_centers(targets)
        losses, result, flat, points, strides = self.box_losses(
            {"cls": cls_scores, "bbox": bbox_preds, "kernel": kernel_preds}, targets)
        loss_mask = self.mask_loss(mask_feats.float(), flat["kernel"], points, strides,
                                   result.gt_inds, targets) * self.mask_weight
        losses["loss_mask"] = loss_mask
        losses["loss"] = losses["loss"] + loss_mask
        return losses

    def mask_loss(self, mask_feats: torch.Tensor, kernels: torch.Tensor, points: torch.Tensor,
                  strides: torch.Tensor, gt_inds: torch.Tensor,
                  targets: list[dict[str, torch.Tensor]]) -> torch.Tensor:
        """Unweighted mean Dice over the positives of the batch (SPEC §9).

        ``mask_feats`` (B, 8, H/8, W/8); ``kernels`` (B, P, 169); ``points`` (P, 2) and
        ``strides`` (P,) the priors; ``gt_inds`` (B, P) matched gt or −1.
        """
        proto_stride = self.strides[0]
        scale = proto_stride // self.mask_loss_stride
        start = self.mask_loss_stride // 2
        pred_l, gt_l = [], []
        for img, t in enumerate(targets):
            pos = (gt_inds[img] >= 0).nonzero().squeeze(1)
            if pos.numel() == 0:
                continue
            logits = dynamic_mask_logits(mask_feats[img], kernels[img, pos], points[pos],
                                         strides[pos], proto_stride, self.dyconv_channels,
                                         self.num_dyconvs)
            if scale > 1:
                logits = F.interpolate(logits[None], scale_factor=scale, mode="bilinear",
                                       align_corners=False)[0]
            gt = t["masks"][gt_inds[img, pos]][:, start::self.mask_loss_stride,
                                               start::self.mask_loss_stride]
            if gt.shape[-2:] != logits.shape[-2:]:
                raise ValueError(f"gt masks {tuple(t['masks'].shape[-2:])} do not match the "
                                 f"input canvas of the mask logits {tuple(logits.shape[-2:])}"
                                 f"×{self.mask_loss_stride}")
            pred_l.append(logits)
            gt_l.append(gt)
        num_pos = reduce_mean(torch.tensor(float(sum(len(p) for p in pred_l)),
                                           device=mask_feats.device)).clamp(min=1)
        if not pred_l:
            # Keep the mask branch in the graph so DDP sees every parameter used.
            return mask_feats.sum() * 0 + kernels.sum() * 0
        loss = dice_loss(torch.cat(pred_l), torch.cat(gt_l), self.dice_eps).sum()
        return loss / num_pos
