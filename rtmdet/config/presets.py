"""Named configurations: RTMDet tiny–x, RTMDet-Ins tiny–x, RTMDet-R tiny–l.

Each preset is a partial config (a dict of overrides on the schema defaults in
:mod:`rtmdet.config`, which are RTMDet-l's) holding only what the paper's sizes change:
width/depth factors, neck/head channels, ``exp_on_reg``, the Mosaic/MixUp cache settings and
resize ranges (SPEC §1, §7, §9, §10).
"""
from __future__ import annotations

import copy
from typing import Any


def _size(name: str, deepen: float, widen: float, channels: int, neck_blocks: int,
          exp_on_reg: bool, mosaic_cache: int, pop: str, mixup_cache: int, mixup_prob: float,
          ratio: list[float]) -> dict[str, Any]:
    return {
        "name": name,
        "model": {"backbone": {"deepen_factor": deepen, "widen_factor": widen},
                  "neck": {"out_channels": channels, "num_csp_blocks": neck_blocks},
                  "head": {"exp_on_reg": exp_on_reg}},
        "data": {"mosaic_cache_size": mosaic_cache, "mosaic_pop": pop,
                 "mixup_cache_size": mixup_cache, "mixup_pop": pop, "mixup_prob": mixup_prob,
                 "resize_ratio": ratio, "stage2_resize_ratio": ratio},
    }


# SPEC §1 and §7: tiny uses smaller FIFO caches and MixUp p=0.5; tiny/s jitter less.
PRESETS: dict[str, dict[str, Any]] = {
    "rtmdet-tiny": _size("rtmdet-tiny", 0.167, 0.375, 96, 1, False, 20, "fifo", 10, 0.5, [0.5, 2.0]),
    "rtmdet-s": _size("rtmdet-s", 0.33, 0.5, 128, 1, False, 40, "random", 20, 1.0, [0.5, 2.0]),
    "rtmdet-m": _size("rtmdet-m", 0.67, 0.75, 192, 2, True, 40, "random", 20, 1.0, [0.1, 2.0]),
    "rtmdet-l": _size("rtmdet-l", 1.0, 1.0, 256, 3, True, 40, "random", 20, 1.0, [0.1, 2.0]),
    "rtmdet-x": _size("rtmdet-x", 1.33, 1.25, 320, 4, True, 40, "random", 20, 1.0, [0.1, 2.0]),
}


def _ins(size: str) -> dict[str, Any]:
    """RTMDet-Ins preset of a size (SPEC §9): the detector's preset, the instance head
    (ReLU distances at every size) and the official Ins test settings."""
    preset = copy.deepcopy(PRESETS[f"rtmdet-{size}"])
    preset["name"] = f"rtmdet-ins-{size}"
    preset["model"]["type"] = "ins"
    preset["model"]["head"]["exp_on_reg"] = False
    preset["eval"] = {"score_thr": 0.05, "nms_pre": 1000, "iou_thr": 0.6, "max_per_img": 100}
    return preset


PRESETS.update({f"rtmdet-ins-{size}": _ins(size) for size in ("tiny", "s", "m", "l", "x")})


def _rotated(size: str) -> dict[str, Any]:
    """RTMDet-R preset of a size (SPEC §10): the detector's model with 15 DOTA classes and the
    angle branch, 1024 patches, the official 36-epoch recipe and DOTA test settings."""
    preset = copy.deepcopy(PRESETS[f"rtmdet-{size}"])
    preset["name"] = f"rtmdet-r-{size}"
    preset["model"]["type"] = "rotated"
    preset["model"]["head"]["num_classes"] = 15
    preset["data"] = {"format": "dota", "root": "data/dota_split/ss", "img_size": 1024,
                      "train_images": "train/images", "train_ann": "train/labelTxt",
                      "val_images": "val/images", "val_ann": "val/labelTxt",
                      "mosaic": False, "mixup": False, "stage2": False}
    preset["train"] = {"epochs": 36, "batch_size": 8, "base_lr": 2.5e-4, "base_batch_size": 8,
                       "flat_epochs": 18, "stage2_epochs": 0}
    preset["eval"] = {"score_thr": 0.05, "nms_pre": 2000, "iou_thr": 0.1, "max_per_img": 2000}
    return preset


PRESETS.update({f"rtmdet-r-{size}": _rotated(size) for size in ("tiny", "s", "m", "l")})
