"""One checkpoint's COCO evaluation with its files: ``eval.json`` (metrics, test settings, per-class
AP), the COCO results, ``per_class_ap.csv`` and the PR curve — box AP for RTMDet and, for
RTMDet-Ins, mask AP from the same detections (:mod:`.segm`). Rotated models follow the DOTA
protocol instead (:mod:`.dota_patches`).

The files are named by test setting (:func:`setting_suffix`): the main setting writes
``eval.json``, ``pr_curve.png``…, the ablation setting (``--fast``) ``eval_fast.json``,
``pr_curve_fast.png``…, so one setting's run never overwrites or mislabels the other's.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from rtmdet.config import Config
from rtmdet.models.precision import run_tag
from rtmdet.utils.io import atomic_write_json, atomic_write_text

from . import segm
from .coco import FAST_SETTINGS, coco_evaluate, detect_dataset, per_class_ap, plot_pr_curves


def setting_suffix(fast: bool, dtype: str = "fp32", engine: str = "torch") -> str:
    """File-name suffix of a test setting's outputs: '' (main) or '_fast' (ablation), plus
    ``_openvino`` for another engine and ``_bf16``/``_int8`` for a reduced precision, so it
    never overwrites the torch fp32 eval.json."""
    return ("_fast" if fast else "") + run_tag(dtype, engine)


def evaluate(model: torch.nn.Module, cfg: Config, out_dir: str | Path | None = None,
             fast: bool = False, device: str = "cpu", backend: str = "auto",
             max_images: int | None = None, suffix: str | None = None,
             progress: bool = False, dtype: str = "fp32", engine: str = "torch"
             ) -> dict[str, Any]:
    """Detect on the val split, compute COCO metrics, write eval{suffix}.json / results /
    per-class AP / PR curve into ``out_dir`` (``suffix`` default: by the test setting and
    ``dtype``). Returns the eval.json content (``files``: what was written).

    ``dtype`` is the precision that runs (already resolved by the caller): ``fp32``/``bf16``
    for torch models; an int8 model is an onnxruntime detector
    (:class:`rtmdet.export.ort_detector.OrtDetector`) and ``dtype="int8"`` only labels it; so
    does ``dtype`` for ``engine="openvino"`` (the same detector class, compiled at ``dtype``)."""
    sfx = setting_suffix(fast, dtype, engine) if suffix is None else suffix
    settings = {"score_thr": cfg.eval.score_thr, "iou_thr": cfg.eval.iou_thr,
                "max_per_img": cfg.eval.max_per_img, "nms_pre": cfg.eval.nms_pre}
    if fast:
        settings.update(FAST_SETTINGS)
    ins = cfg.model.type == "ins"     # masks too: segm AP next to bbox AP, same detections
    results, source = detect_dataset(model, cfg, device=device, max_images=max_images,
                                     to_results=segm.segm_results_fn(model) if ins
                                     else None, progress=progress,
                                     dtype="fp32" if dtype == "int8" or engine != "torch"
                                     else dtype, **settings)
    if ins:
        segm_results, results = results, segm.strip_segm(results)
    stats, precision, cat_ids = coco_evaluate(source.ann_file, results, "bbox", backend)
    names = {cid: name for cid, name in zip(source.cat_ids, source.classes)}
    report = {"metrics": stats, "test_settings": settings, "setting": "ablation" if fast else "main",
              "dtype": dtype, "engine": engine,
              "num_images": len(source) if max_images is None else min(max_images, len(source)),
              "num_detections": len(results), "ann_file": str(source.ann_file),
              "per_class": per_class_ap(precision, cat_ids, names),
              "bad_input": dict(source.bad.counts)}
    if ins:
        report.update(segm.segm_report(source.ann_file, segm_results, names, backend))
    if out_dir is not None:
        out = Path(out_dir)
        files = [out / f"results{sfx}.bbox.json"] + ([out / f"results{sfx}.segm.json"] if ins else [])
        files += [out / f"per_class_ap{sfx}.csv", out / f"pr_curve{sfx}.png", out / f"eval{sfx}.json"]
        report["files"] = [str(f) for f in files]
        atomic_write_json(files[0], results)
        if ins:
            atomic_write_json(files[1], segm_results)
        atomic_write_text(files[-3], "category_id,name,AP\n" + "".join(
            f"{r['category_id']},{r['name']},{r['AP']:.4f}\n" for r in report["per_class"]))
        plot_pr_curves(precision, files[-2], f"{cfg.name}: AP {stats['AP']:.3f}")
        atomic_write_json(files[-1], report)
    return report
