"""``train.init_from``: start from another detector or from an ImageNet-pretrained CSPNeXt backbone.

The paper trains tiny and s (and every RTMDet-R size) from the official CSPNeXt ImageNet
classifiers. Those checkpoints (mmpretrain ``ImageClassifier``) hold the backbone under
``backbone.`` with the official module names (``stem.N``, ``stageN.M``) and a classifier under
``head.fc``; a bare backbone state dict has the same names without the prefix. Either layout is
accepted here: the backbone tensors are renamed as the official-weight importer renames them
and copied into ``model.backbone``; neck and head keep their fresh initialisation.

Official files (the download URLs the official configs use; this project never downloads):

============  ==========================================================================
size          file, under https://download.openmmlab.com/mmdetection/v3.0/rtmdet/cspnext_rsb_pretrain/
============  ==========================================================================
tiny          ``cspnext-tiny_imagenet_600e.pth``
s             ``cspnext-s_imagenet_600e.pth``
m             ``cspnext-m_8xb256-rsb-a1-600e_in1k-ecb3bbd9.pth``
l             ``cspnext-l_8xb256-rsb-a1-600e_in1k-6a760974.pth``
x             not referenced by the official detection configs
============  ==========================================================================

Such files carry pickled metadata that ``weights_only=True`` may refuse; extract the state
dict once in a trusted environment (``torch.save(ckpt["state_dict"], path)``) and point
``train.init_from`` at that.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .weights import _map_key, init_from_detector, load_checkpoint, unwrap_state_dict

_DETECTOR_PARTS = ("neck.", "bbox_head.", "head.cls_convs.", "head.rtm_")


def is_backbone_checkpoint(state_dict: dict[str, Any]) -> bool:
    """A classifier/backbone checkpoint: backbone tensors and no detector neck or head."""
    sd = unwrap_state_dict(state_dict)
    has_backbone = any(k.startswith(("backbone.stem.", "stem.")) for k in sd)
    return has_backbone and not any(k.startswith(_DETECTOR_PARTS) for k in sd)


def load_backbone_checkpoint(model: nn.Module, state_dict: dict[str, Any]
                             ) -> dict[str, list[str]]:
    """Copy a CSPNeXt backbone checkpoint (``backbone.``-prefixed or bare official names, or
    our own ``backbone.stages.`` names) into ``model.backbone``.

    Strict on the backbone: every backbone tensor of ours must be present with the same shape
    (a different size fails in one line). Returns ``{"loaded", "new", "unused"}``: our keys set,
    our keys left at their initialisation (neck, head), the checkpoint's keys not used (e.g. the
    classifier ``head.fc``)."""
    sd = unwrap_state_dict(state_dict)
    if not any(k.startswith("backbone.") for k in sd):
        sd = {f"backbone.{k}": v for k, v in sd.items()}
    ours = model.state_dict(keep_vars=True)
    loaded: dict[str, torch.Tensor] = {}
    unused, wrong = [], []
    for key, value in sd.items():
        if not key.startswith("backbone."):
            unused.append(key)
            continue
        new = _map_key(key, model)
        if new not in ours:
            unused.append(key)
        elif tuple(ours[new].shape) != tuple(value.shape):
            wrong.append(f"{key} {tuple(value.shape)} vs ours {tuple(ours[new].shape)}")
        else:
            loaded[new] = value
    missing = [k for k in ours if k.startswith("backbone.") and k not in loaded]
    if wrong or missing:
        what = wrong[0] if wrong else f"missing {missing[0]}"
        raise ValueError(f"backbone checkpoint does not fit this model ({len(wrong)} shape "
                         f"mismatch(es), {len(missing)} missing tensor(s), e.g. {what}): "
                         "a CSPNeXt of another size?")
    with torch.no_grad():
        for k, v in loaded.items():
            ours[k].copy_(v)
    return {"loaded": sorted(loaded), "new": sorted(k for k in ours if k not in loaded),
            "unused": sorted(unused)}


def load_init_from(model: nn.Module, path: str) -> dict[str, list[str]]:
    """``train.init_from``: the EMA weights of checkpoint ``path`` (else its weights; ours or
    official) copied into ``model`` — a whole detector by :func:`init_from_detector`, a
    backbone-only classifier checkpoint by :func:`load_backbone_checkpoint`."""
    ckpt = load_checkpoint(path)
    sd = ckpt.get("ema_state_dict") or ckpt.get("state_dict", ckpt)
    load = load_backbone_checkpoint if is_backbone_checkpoint(sd) else init_from_detector
    return load(model, sd)
