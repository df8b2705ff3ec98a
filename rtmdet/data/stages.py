"""The two-stage training schedule (SPEC §7), decided here and nowhere else.

Stage 1 (all but the last ``train.stage2_epochs`` epochs): cached Mosaic → random resize with
``data.resize_ratio`` → crop → HSV → flip → pad → cached MixUp — strong, multi-image
augmentation. Stage 2 (the last ``train.stage2_epochs`` epochs, only when ``data.stage2``):
single images, random resize with ``data.stage2_resize_ratio``, no Mosaic/MixUp, so the model
ends training on images that look like the test distribution. The trainer asks
:func:`stage_for_epoch` at the start of every epoch and rebuilds the dataset when the answer
changes; the dataset builds exactly the stage it is given (:func:`rtmdet.data.loader.
build_train_dataset`); a checkpoint stores the stage, so a resume lands in the same one.
"""
from __future__ import annotations

from rtmdet.config import Config

STAGES = (1, 2)


def stage_for_epoch(cfg: Config, epoch: int) -> int:
    """1 or 2 for the 0-based ``epoch``: 2 for the last ``train.stage2_epochs`` epochs when
    ``data.stage2`` is on (the stage-2 ablation turns it off: stage 1 throughout)."""
    t = cfg.train
    return 2 if cfg.data.stage2 and epoch >= t.epochs - t.stage2_epochs else 1
