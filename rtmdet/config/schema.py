"""The config schema: every section and field, its type and default, in one place.

Loading (presets → YAML base chains → overrides, one-line errors) lives in
:mod:`rtmdet.config`, which re-exports these classes; import them from there. The schema is
strict — unknown keys are rejected and nothing is coerced — because ablations are small diffs
and a typo must fail loudly instead of silently training the baseline.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from .checks import (Betas, Device, Fraction, HsvGains, NonNegFloat, NonNegInt, OddKernel,
                     OpenFraction, PosFloat, PosInt, RatioRange, StageBlocks, Strides)


class ConfigError(ValueError):
    """A config problem, always a single line: ``<source>: <dotted.key>: <what is wrong>``."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True,
                              allow_inf_nan=False)


# ----------------------------------------------------------------------------- model
class BackboneConfig(_Section):
    deepen_factor: PosFloat = 1.0
    widen_factor: PosFloat = 1.0
    stage_blocks: StageBlocks = [3, 6, 6, 3]      # un-scaled; 3-9-9-3 in the depth ablation
    kernel_size: OddKernel = 5                   # depthwise kernel of every CSPNeXt block
    channel_attention: bool = True
    expand_ratio: PosFloat = 0.5
    init: Literal["cspnext_default", "conv_module"] = "cspnext_default"  # rtmdet.models.init


class NeckConfig(_Section):
    out_channels: PosInt = 256                   # also the head's channels
    num_csp_blocks: PosInt = 3
    expand_ratio: PosFloat = 0.5
    kernel_size: OddKernel = 5
    widen_factor: PosFloat = 1.0                    # neck width relative to the backbone outputs


class HeadConfig(_Section):
    num_classes: PosInt = 80
    stacked_convs: NonNegInt = 2
    share: Literal["none", "conv_bn", "conv"] = "conv"
    exp_on_reg: bool = True
    pred_kernel_size: OddKernel = 1
    strides: Strides = [8, 16, 32]
    # RTMDet-Ins only (model.type=ins, SPEC §9): prototypes and dynamic mask convs.
    num_prototypes: PosInt = 8
    dyconv_channels: PosInt = 8
    num_dyconvs: PosInt = 3
    mask_stacked_convs: NonNegInt = 4


class ModelConfig(_Section):
    type: Literal["det", "ins", "rotated"] = "det"
    backbone: BackboneConfig = BackboneConfig()
    neck: NeckConfig = NeckConfig()
    head: HeadConfig = HeadConfig()


# ----------------------------------------------------------------------------- data
class DataConfig(_Section):
    format: Literal["coco", "dota"] = "coco"
    root: str = "data/synth_coco"
    train_ann: str = "annotations/instances_train.json"
    val_ann: str = "annotations/instances_val.json"
    train_images: str = "images/train"
    val_images: str = "images/val"
    img_size: PosInt = 640                       # a multiple of the largest stride (checks.py)
    num_workers: NonNegInt = 2
    filter_empty: bool = True                    # training skips images without usable boxes
    min_img_size: NonNegInt = 32                       # training skips images with a side below this
    with_masks: bool = False                     # emit instance masks (always on for model.type=ins)
    on_bad: Literal["skip", "error"] = "skip"    # bad image/annotation: counted skip or error
    # Stage-1 pipeline (SPEC §7).
    mosaic: bool = True
    cached: bool = True
    mosaic_cache_size: PosInt = 40
    mosaic_pop: Literal["random", "fifo"] = "random"
    mixup: bool = True
    mixup_cache_size: PosInt = 20
    mixup_pop: Literal["random", "fifo"] = "random"
    mixup_prob: Fraction = 1.0
    mixup_max_tries: PosInt = 15
    resize_ratio: RatioRange = [0.1, 2.0]
    hsv_gains: HsvGains = [5, 30, 30]
    flip_prob: Fraction = 0.5
    # Stage 2 (last epochs): no Mosaic/MixUp, large-scale jitter of the single image.
    stage2: bool = True
    stage2_resize_ratio: RatioRange = [0.1, 2.0]


# ----------------------------------------------------------------------------- train
class SimOTAConfig(_Section):
    """YOLOX's SimOTA (``train.assigner.type: simota``); defaults are YOLOX's."""
    center_radius: PosFloat = 2.5                   # centre region: |prior − gt centre| < r·stride
    candidate_topk: PosInt = 10                     # IoUs summed for the dynamic k
    iou_weight: NonNegFloat = 3.0                      # weight of −log IoU
    cls_weight: NonNegFloat = 1.0                # weight of BCE(σ(logit), one-hot)


class ATSSConfig(_Section):
    """ATSS (``train.assigner.type: atss``): closest priors per level, IoU ≥ mean + std."""
    topk: PosInt = 9                                # candidates per pyramid level
    anchor_scale: PosFloat = 8.0                    # square anchor of side anchor_scale·stride


class TaskAlignedConfig(_Section):
    """TOOD's task-aligned assigner without its head (``train.assigner.type: task_aligned``)."""
    topk: PosInt = 13
    alpha: NonNegFloat = 1.0                           # t = score^alpha · IoU^beta
    beta: NonNegFloat = 6.0
    target: Literal["iou", "alignment"] = "iou"  # soft target: IoU (as DSLA) or TOOD's normalised t


class AssignerConfig(_Section):
    # Which assigner; the fields below ``type`` up to ``max_gts_per_chunk`` configure ``dsla``
    # (``max_gts_per_chunk`` is shared by all), the sub-sections the alternatives.
    type: Literal["dsla", "simota", "atss", "task_aligned"] = "dsla"
    topk: PosInt = 13
    cls_cost: bool = True
    soft_label: bool = True
    reg_weight: NonNegFloat = 3.0
    log_iou_cost: bool = True                    # False: reg cost (1 - IoU)·reg_weight
    center_prior: bool = True
    center_base: PosFloat = 10.0
    center_offset: float = 3.0
    iou_eps: PosFloat = 1e-7
    max_gts_per_chunk: PosInt = 256
    simota: SimOTAConfig = SimOTAConfig()
    atss: ATSSConfig = ATSSConfig()
    task_aligned: TaskAlignedConfig = TaskAlignedConfig()


class LossConfig(_Section):
    qfl_beta: NonNegFloat = 2.0
    cls_weight: NonNegFloat = 1.0
    bbox_weight: NonNegFloat = 2.0
    giou_eps: PosFloat = 1e-6
    mask_weight: NonNegFloat = 2.0                     # RTMDet-Ins Dice loss (SPEC §9)


class TrainConfig(_Section):
    epochs: PosInt = 300
    batch_size: PosInt = 32                      # per process
    base_lr: PosFloat = 0.004                    # for ``base_batch_size``; scaled linearly
    base_batch_size: PosInt = 256
    optimizer: Literal["adamw", "sgd"] = "adamw"
    betas: Betas = [0.9, 0.999]
    momentum: OpenFraction = 0.9
    weight_decay: NonNegFloat = 0.05
    norm_decay: bool = False
    bias_decay: bool = False
    scheduler: Literal["flat_cosine", "cosine"] = "flat_cosine"
    warmup_iters: NonNegInt = 1000
    warmup_ratio: Fraction = 1e-5
    flat_epochs: NonNegInt = 150                 # cosine starts here
    min_lr_ratio: Fraction = 0.05
    stage2_epochs: NonNegInt = 20                      # last epochs run the stage-2 pipeline
    ema: bool = True
    ema_momentum: Fraction = 2e-4
    ema_warmup: NonNegFloat = 2000.0
    amp: bool = False                            # CUDA fp16; CPU bf16 where native (else fp32)
    grad_clip: PosFloat | None = None
    sync_bn: bool = False
    checkpoint_interval: PosInt = 10             # epochs
    checkpoint_iters: PosInt | None = None       # also save last.pt every N iterations
    log_interval: PosInt = 10                    # iterations between MLflow metric writes
    # Validate the EMA weights every N epochs (and after the last) into metrics.csv (val_AP)
    # and best.pt by the main metric; 0 = off. Changes no training result (not in config_hash).
    val_interval: NonNegInt = 0
    max_iters_per_epoch: PosInt | None = None    # smoke runs cut epochs short
    device: Device = "auto"                      # auto, cpu, cuda or cuda:N
    # A non-finite loss or gradient norm: stop (one-line error naming the iteration and the last
    # good checkpoint, rtmdet.engine.divergence) or skip that step, at most max_skipped_steps.
    nan_policy: Literal["stop", "skip_step"] = "stop"
    max_skipped_steps: NonNegInt = 10
    threads: PosInt | None = None                   # torch CPU threads (None: torch's default)
    channels_last: bool = True                   # NHWC activations: faster convs on CPU and GPU
    fused_optimizer: bool = True                 # one fused AdamW/SGD kernel, not a per-tensor loop
    init_from: str | None = None                 # detector or backbone-only checkpoint
    assigner: AssignerConfig = AssignerConfig()
    loss: LossConfig = LossConfig()


# ----------------------------------------------------------------------------- eval / bench
class EvalConfig(_Section):
    score_thr: Fraction = 0.001
    nms_pre: PosInt = 30000
    iou_thr: Fraction = 0.65
    max_per_img: PosInt = 300
    batch_size: PosInt = 8


class BenchConfig(_Section):
    backend: Literal["torch", "onnxruntime", "openvino", "tensorrt"] = "torch"
    device: Literal["cpu", "cuda"] = "cpu"
    size: PosInt = 640
    batch: PosInt = 1
    fp16: bool = False
    warmup: NonNegInt = 10
    runs: PosInt = 30
    threads: PosInt = 2
    channels_last: bool = True                   # torch backend: NHWC (oneDNN's faster layout)


class Config(_Section):
    name: str = "rtmdet-l"
    seed: NonNegInt = 0
    work_dir: str = "runs/default"
    tags: dict[str, str] = {}                    # ablation / variant labels for MLflow
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    bench: BenchConfig = BenchConfig()

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def flat(self) -> dict[str, Any]:
        """Dotted key → value, e.g. for MLflow params."""
        return flatten_dict(self.to_dict())


def config_hash(cfg: Config, ignore: tuple[str, ...] = ("tags", "work_dir", "train.val_interval")
                ) -> str:
    """Hash of what determines a result: the config minus bookkeeping fields (``ignore``, dotted
    keys allowed). Saved in checkpoints (a resume must use the same config) and in MLflow tags;
    how often training validates changes no weight, so a resume may change it."""
    d = cfg.to_dict()
    for key in ignore:
        *parents, leaf = key.split(".")
        node = d
        for part in parents:
            node = node.get(part, {})
        node.pop(leaf, None)
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def flatten_dict(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping → ``{"dotted.key": value}`` (an empty mapping stays one value): the one
    flattening behind MLflow params, override origins and ``dvc exp run -S`` overrides."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten_dict(v, key + "."))
        else:
            out[key] = v
    return out
