"""The official side of ``benchmarks/parity_official.py``: train the official RTMDet-tiny
(mmdetection 3.3.0) with mmengine's ``Runner`` on the proxy data set and dump its val
predictions as a COCO results JSON. Runs **only in the oracle venv** (``make_reference.py``
builds it), as a subprocess of the benchmark, one seed per process.

The official ``rtmdet_tiny_8xb32-300e_coco.py`` is loaded as it ships (``oracle_env.load_config``:
SyncBN → BN, no ImageNet download) and adapted, nothing else changed:

- 6 proxy classes, the proxy COCO files, ``--recipe``'s input size: every ``img_scale`` /
  ``scale`` / ``crop_size`` / ``size`` of the official train, stage-2 and test pipelines is
  multiplied by ``img_size / 640`` (Mosaic 640 → 128, RandomResize 1280 → 256, ...); cache
  sizes, pop mode, MixUp probability and resize ratios stay the official ones (checked against
  the recipe, which carries ours, so a mismatch stops the run);
- an iteration-based loop (``IterBasedTrainLoop``, ``max_iters`` = the recipe's N) instead of
  300 epochs; ``LinearLR`` warm-up and ``CosineAnnealingLR`` (η_min = 0.05·lr) are given in
  iterations; the lr is the recipe's (ours, scaled to the batch);
- ``EMAHook`` (``ExpMomentumEMA``) with the recipe's momentum/gamma;
- the stage switch: ``PipelineSwitchHook`` switches at an *epoch*, which an iteration loop never
  advances, so :class:`IterPipelineSwitch` does the same assignment
  (``dataset.pipeline = Compose(stage2)``) before the recipe's switch iteration
  (``num_workers=0``: no worker holds an old copy);
- no validation loop and no checkpoints during training; after it, the EMA model predicts the
  val images (official test pipeline, ``model.test_cfg`` = the recipe's test setting).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "reference"))

import oracle_env  # noqa: E402  (tests/reference: the CPU shims for the official code)

SIZE_KEYS = ("img_scale", "scale", "crop_size", "size")


def scaled_pipeline(pipeline: list[dict], factor: float) -> list[dict]:
    """The official pipeline with every spatial size multiplied by ``factor``; no backend args."""
    out = []
    for step in pipeline:
        step = {k: v for k, v in dict(step).items()
                if k not in ("backend_args", "file_client_args")}
        for key in SIZE_KEYS:
            if key in step and isinstance(step[key], (tuple, list)):
                step[key] = tuple(int(round(v * factor)) for v in step[key])
        out.append(step)
    return out


def check_official_data_settings(pipeline: list[dict], stage2: list[dict], recipe: dict) -> dict:
    """The official tiny cache/MixUp/resize settings, checked against ours (the recipe)."""
    by_type = {s["type"]: s for s in pipeline}
    mosaic, mixup, resize = by_type["CachedMosaic"], by_type["CachedMixUp"], by_type["RandomResize"]
    resize2 = {s["type"]: s for s in stage2}["RandomResize"]
    got = {"mosaic_cache_size": mosaic["max_cached_images"],
           "mosaic_pop": "random" if mosaic.get("random_pop", True) else "fifo",
           "mixup_cache_size": mixup["max_cached_images"],
           "mixup_pop": "random" if mixup.get("random_pop", True) else "fifo",
           "mixup_prob": float(mixup.get("prob", 1.0)),
           "resize_ratio": [float(r) for r in resize["ratio_range"]],
           "stage2_resize_ratio": [float(r) for r in resize2["ratio_range"]]}
    want = {k: recipe["data"][k] for k in got}
    if got != want:
        raise SystemExit(f"official tiny data settings {got} differ from ours {want}")
    return got


class _Hooks:
    """Built lazily: mmengine is importable only after ``oracle_env.import_official``."""

    @staticmethod
    def switch_hook(switch_iter: int, pipeline: list[dict]):
        from mmcv.transforms import Compose
        from mmengine.hooks import Hook

        class IterPipelineSwitch(Hook):
            """PipelineSwitchHook's assignment, at an iteration: after iteration
            ``switch_iter − 1`` so that batch ``switch_iter`` is the first stage-2 one."""
            priority = "NORMAL"

            def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
                if runner.iter + 1 == switch_iter:
                    runner.train_dataloader.dataset.pipeline = Compose(pipeline)
                    runner.logger.info(f"stage 2 pipeline from iteration {switch_iter}")
        return IterPipelineSwitch()


def build_runner(recipe: dict, seed: int, work_dir: Path):
    from mmengine.config import ConfigDict
    from mmengine.runner import Runner

    cfg, model = oracle_env.load_config("det", "tiny")
    r, d = recipe, recipe["data"]
    factor = r["img_size"] / 640
    model["bbox_head"]["num_classes"] = len(d["classes"])
    ev = r["eval"]
    model["test_cfg"] = ConfigDict(nms_pre=ev["nms_pre"], min_bbox_size=0, score_thr=ev["score_thr"],
                             nms=dict(type="nms", iou_threshold=ev["iou_thr"]),
                             max_per_img=ev["max_per_img"])
    stage1 = scaled_pipeline(cfg.train_pipeline, factor)
    stage2 = scaled_pipeline(cfg.train_pipeline_stage2, factor)
    official = check_official_data_settings(stage1, stage2, recipe)
    dataset = dict(type="CocoDataset", data_root=d["root"], ann_file=d["train_ann"],
                   data_prefix=dict(img=d["train_images"] + "/"),
                   metainfo=dict(classes=tuple(d["classes"])),
                   filter_cfg=dict(filter_empty_gt=True, min_size=d["min_img_size"]),
                   pipeline=stage1)
    loader = dict(batch_size=r["batch_size"], num_workers=0, persistent_workers=False,
                  sampler=dict(type="DefaultSampler", shuffle=True), batch_sampler=None,
                  dataset=dataset)
    n, lr = r["iters"], r["lr"]
    sched = [dict(type="LinearLR", start_factor=r["warmup_ratio"], by_epoch=False, begin=0,
                  end=r["warmup_iters"]),
             dict(type="CosineAnnealingLR", eta_min=lr * r["min_lr_ratio"], begin=r["flat_iters"],
                  end=n, T_max=n - r["flat_iters"], by_epoch=False)]
    optim = dict(type="OptimWrapper",
                 optimizer=dict(type="AdamW", lr=lr, weight_decay=r["weight_decay"],
                                betas=tuple(r["betas"])),
                 paramwise_cfg=dict(norm_decay_mult=0, bias_decay_mult=0, bypass_duplicate=True))
    ema = dict(type="EMAHook", ema_type="ExpMomentumEMA", momentum=r["ema_momentum"],
               gamma=r["ema_warmup"], update_buffers=True, priority=49)
    runner = Runner(
        model=model, work_dir=str(work_dir), train_dataloader=loader,
        train_cfg=dict(type="IterBasedTrainLoop", max_iters=n, val_interval=n + 1),
        optim_wrapper=optim, param_scheduler=sched,
        default_hooks=dict(timer=dict(type="IterTimerHook"),
                           logger=dict(type="LoggerHook", interval=r["log_interval"]),
                           param_scheduler=dict(type="ParamSchedulerHook"), checkpoint=None,
                           sampler_seed=dict(type="DistSamplerSeedHook")),
        custom_hooks=[ema, _Hooks.switch_hook(r["stage2_start"], stage2)],
        randomness=dict(seed=seed), default_scope="mmdet", launcher="none",
        env_cfg=dict(cudnn_benchmark=False, dist_cfg=dict(backend="gloo"),
                     mp_cfg=dict(mp_start_method="fork", opencv_num_threads=0)),
        log_processor=dict(type="LogProcessor", window_size=r["log_interval"], by_epoch=False))
    test_pipeline = scaled_pipeline(cfg.test_pipeline, factor)
    return runner, test_pipeline, official


def ema_model(runner):
    for hook in runner.hooks:
        if type(hook).__name__ == "EMAHook":
            return hook.ema_model.module
    raise SystemExit("no EMAHook registered")


def predict_val(model, recipe: dict, test_pipeline: list[dict], batch: int = 16) -> list[dict]:
    """COCO results (xywh, original pixels) of ``model`` on the val split, as CocoMetric's
    ``results2json`` writes them."""
    import torch
    from mmdet.datasets import CocoDataset
    from mmengine.dataset import pseudo_collate

    d = recipe["data"]
    ds = CocoDataset(data_root=d["root"], ann_file=d["val_ann"],
                     data_prefix=dict(img=d["val_images"] + "/"),
                     metainfo=dict(classes=tuple(d["classes"])), test_mode=True,
                     pipeline=test_pipeline)
    cat_ids = ds.cat_ids
    model.eval()
    results = []
    with torch.no_grad():
        for start in range(0, len(ds), batch):
            data = model.data_preprocessor(pseudo_collate([ds[i] for i in range(
                start, min(start + batch, len(ds)))]), False)
            for sample in model.predict(data["inputs"], data["data_samples"], rescale=True):
                pred = sample.pred_instances
                for (x1, y1, x2, y2), s, lab in zip(pred.bboxes.tolist(), pred.scores.tolist(),
                                                    pred.labels.tolist()):
                    results.append({"image_id": int(sample.img_id),
                                    "category_id": int(cat_ids[lab]),
                                    "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(s)})
    return results


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", required=True, help="recipe JSON written by parity_official.py")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--work-dir", required=True)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    recipe = json.loads(Path(args.recipe).read_text())
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    oracle_env.import_official()
    runner, test_pipeline, official = build_runner(recipe, args.seed, work)
    t0, c0 = time.perf_counter(), time.process_time()
    runner.train()
    train_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    t1 = time.perf_counter()
    results = predict_val(ema_model(runner), recipe, test_pipeline)
    out = {"seed": args.seed, "train_s": train_s, "sec_per_iter": train_s / recipe["iters"],
           "cpu_sec_per_iter": cpu_s / recipe["iters"],
           "predict_s": time.perf_counter() - t1, "official_data_settings": official,
           "loop": "mmengine Runner, IterBasedTrainLoop, CPU", "results": results}
    tmp = work / "official_results.json.tmp"
    tmp.write_text(json.dumps(out))
    os.replace(tmp, work / "official_results.json")
    print(f"official seed {args.seed}: {len(results)} detections, {train_s:.0f} s training")


if __name__ == "__main__":
    main()
