"""rtmdet-ablations: a from-scratch RTMDet with a reproducible ablation pipeline.

Stable API::

    model = rtmdet.build_model("rtmdet-s")
    rtmdet.load_mmdet_weights(model, state_dict)
    cls_scores, bbox_preds = model.forward_raw(x)
    dets = model.predict(x, score_thr=0.05, iou_thr=0.6, max_per_img=100)
    x = rtmdet.preprocess(images_bgr_uint8, size=640)
"""
from .config import Config, ConfigError, load_config
from .data.preprocess import preprocess
from .models.build import build_model
from .models.weights import load_mmdet_weights, load_weights, save_weights

__version__ = "0.1.0"
__all__ = ["Config", "ConfigError", "build_model", "load_config", "load_mmdet_weights",
           "load_weights", "preprocess", "save_weights"]
