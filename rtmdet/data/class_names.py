"""Class names for checkpoints that were not trained here: official weights are trained on COCO
(RTMDet, RTMDet-Ins: 80 classes) or DOTA v1.0 (RTMDet-R: 15 classes), and ``rtmdet convert``
stores these names in the checkpoint so ``rtmdet predict`` labels a person "person", not "0".
Checkpoints trained here carry the names of their data set's categories instead.
"""
from __future__ import annotations

from .dota import DOTA_CLASSES

# The 80 COCO detection categories in category-id order (the contiguous label order of the
# official models: label 0 = category id 1 "person", ..., label 79 = id 90 "toothbrush").
COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich",
    "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush")


def official_class_names(model_type: str, num_classes: int) -> list[str] | None:
    """The names of the official release of that task and class count, or None (unknown)."""
    if model_type == "rotated" and num_classes == len(DOTA_CLASSES):
        return list(DOTA_CLASSES)
    if model_type in ("det", "ins") and num_classes == len(COCO_CLASSES):
        return list(COCO_CLASSES)
    return None
