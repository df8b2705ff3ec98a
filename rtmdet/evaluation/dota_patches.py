"""DOTA evaluation of an RTMDet-R model: patch inference → merge → VOC07 mAP → Task 1 files.

``rtmdet eval`` sends rotated configs here (SPEC §10). The model sees the split *patches* of
the val set (``data.val_images`` / ``data.val_ann`` under ``data.root``, as written by
``rtmdet data split-dota``); its detections are mapped back to the original images through the
split's ``index.json`` and merged per image and class with rotated NMS, then scored against the
*original* (unsplit) labels — the patch labels contain clipped, re-flagged copies of cut
objects and would inflate the score. The merged detections are also written as the DOTA server's
Task 1 submission, so the same command serves val (scored) and test (submission only).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader

from rtmdet.config import Config
from rtmdet.data.dota_patches import load_patch_index, merge_patch_detections
from rtmdet.data.dota import DOTA_CLASSES, IMAGE_SUFFIXES, parse_dota_labels, quads_to_rboxes
from rtmdet.data.loader import build_val_dataset, collate
from rtmdet.data.preprocess import normalize
from rtmdet.geometry.rotated import rbox_to_poly
from rtmdet.utils.io import atomic_save_figure, atomic_write_json, atomic_write_text, pyplot

from .dota_metric import eval_rotated_map, write_dota_submission

log = logging.getLogger(__name__)
Dets = dict[str, dict[str, torch.Tensor]]


@torch.no_grad()
def detect_patches(model: torch.nn.Module, cfg: Config, device: str = "cpu",
                   max_patches: int | None = None) -> Dets:
    """Run ``model.predict`` (``cfg.eval`` settings) on every val patch; boxes in patch pixels."""
    dataset = build_val_dataset(cfg)
    if max_patches is not None:
        dataset = torch.utils.data.Subset(dataset, range(min(max_patches, len(dataset))))
    loader = DataLoader(dataset, batch_size=cfg.eval.batch_size, shuffle=False, num_workers=0,
                        collate_fn=collate)
    e = cfg.eval
    model.eval().to(device)
    out: Dets = {}
    for images, metas in loader:
        dets = model.predict(normalize(images.to(device)), score_thr=e.score_thr,
                             iou_thr=e.iou_thr, max_per_img=e.max_per_img, nms_pre=e.nms_pre)
        for det, meta in zip(dets, metas):
            rboxes = det["rboxes"].detach().cpu().double()
            rboxes[:, :4] /= meta["scale"]           # network input → patch pixels (isotropic)
            out[str(meta["image_id"])] = {"rboxes": rboxes, "scores": det["scores"].cpu(),
                                          "labels": det["labels"].cpu()}
    return out


def load_dota_annotations(ann_dir: str | Path, images: list[str] | None = None,
                          classes: tuple[str, ...] = DOTA_CLASSES) -> Dets:
    """Full-image ground truth ``{image: {rboxes, labels, difficult}}`` from a labelTxt folder
    (only ``images`` when given; a missing label file is an error, it would silently drop gts)."""
    ann_dir = Path(ann_dir)
    if not ann_dir.is_dir():
        raise FileNotFoundError(f"{ann_dir}: DOTA label folder not found")
    names = images if images is not None else sorted(p.stem for p in ann_dir.glob("*.txt"))
    out: Dets = {}
    for name in names:
        path = ann_dir / f"{name}.txt"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no labels for image {name!r}")
        quads, labels, diff = parse_dota_labels(path, classes)
        out[name] = {"rboxes": torch.from_numpy(quads_to_rboxes(quads)).double(),
                     "labels": torch.from_numpy(labels), "difficult": torch.from_numpy(diff)}
    return out


def val_split_dir(cfg: Config) -> Path:
    """The folder of the val patches' ``index.json``: the parent of ``data.val_images``."""
    return (Path(cfg.data.root) / cfg.data.val_images).parent


def resolve_sources(cfg: Config, index_path: str | Path | None = None,
                    ann_dir: str | Path | None = None) -> tuple[Path, Path | None, Path | None]:
    """(patch index, full-image label folder or None, full-image folder or None). The label and
    image folders default to the ``labels`` / ``images`` the split recorded in its index."""
    index_path = Path(index_path) if index_path else val_split_dir(cfg) / "index.json"
    if not index_path.is_file():
        raise FileNotFoundError(f"{index_path}: no patch index; split the val images with "
                                "`rtmdet data split-dota` (or pass --patch-index)")
    meta = json.loads(index_path.read_text())
    recorded = meta.get("labels") if isinstance(meta, dict) else None
    labels = Path(ann_dir) if ann_dir else (Path(recorded) if recorded else None)
    images = meta.get("images") if isinstance(meta, dict) else None
    if not images and labels is not None and (labels.parent / "images").is_dir():
        images = labels.parent / "images"         # the DOTA layout: <split>/{images,labelTxt}
    return index_path, labels, Path(images) if images else None


def evaluate_dota(model: torch.nn.Module, cfg: Config, out_dir: str | Path | None = None,
                  device: str = "cpu", index_path: str | Path | None = None,
                  ann_dir: str | Path | None = None,
                  mode: Literal["11point", "area"] = "11point", iou_thr: float = 0.5,
                  max_patches: int | None = None, figure: bool = True) -> dict[str, Any]:
    """The whole DOTA test path; returns (and writes into ``out_dir``) ``eval.json``.

    Without labels (``ann_dir`` None and none recorded by the split) only the submission is
    written and ``metrics`` is empty (the DOTA test set has no public labels).
    """
    index_path, labels_dir, images_dir = resolve_sources(cfg, index_path, ann_dir)
    index = load_patch_index(index_path)
    patch_dets = detect_patches(model, cfg, device, max_patches)
    unknown = [p for p in patch_dets if p not in index]
    if unknown:
        raise ValueError(f"{len(unknown)} val patch(es) not in {index_path}, e.g. {unknown[0]!r}: "
                         "data.val_images and the patch index come from different splits")
    seen = {index[p].image for p in patch_dets}      # all images unless max_patches cut the set
    merged = merge_patch_detections(patch_dets, {k: v for k, v in index.items() if v.image in seen},
                                    cfg.eval.iou_thr, cfg.eval.max_per_img)
    report: dict[str, Any] = {
        "setting": "dota", "test_settings": {"score_thr": cfg.eval.score_thr,
                                             "nms_pre": cfg.eval.nms_pre,
                                             "iou_thr": cfg.eval.iou_thr,
                                             "max_per_img": cfg.eval.max_per_img},
        "num_patches": len(patch_dets), "num_images": len(merged),
        "num_detections": int(sum(len(d["scores"]) for d in merged.values())),
        "patch_index": str(index_path), "labels": str(labels_dir) if labels_dir else None,
        "metrics": {}, "per_class": []}
    if labels_dir is not None:
        gts = load_dota_annotations(labels_dir, sorted(merged))
        res = eval_rotated_map(merged, gts, DOTA_CLASSES, iou_thr=iou_thr, mode=mode)
        report["metrics"] = {"mAP": res["mAP"]}
        report["ap_mode"], report["ap_iou_thr"] = mode, iou_thr
        report["per_class"] = [{"name": k, **v} for k, v in res["per_class"].items()]
    else:
        log.warning("no full-image labels (pass --dota-ann): writing the submission only")
    if out_dir is not None:
        out = Path(out_dir)
        write_dota_submission(merged, out / "submission")
        if report["per_class"]:
            rows = "".join(f"{r['name']},{r['ap']:.4f},{r['num_gts']},{r['num_dets']},"
                           f"{r['recall']:.4f}\n" for r in report["per_class"])
            atomic_write_text(out / "per_class_ap.csv", "name,AP,num_gts,num_dets,recall\n" + rows)
        if figure and images_dir is not None and merged:
            name = max(merged, key=lambda k: len(merged[k]["scores"]))
            img = _find_image(images_dir, name)
            if img is not None:
                gt = load_dota_annotations(labels_dir, [name])[name] if labels_dir else None
                plot_rotated_predictions(img, merged[name], out / "predictions.png", gt,
                                         title=f"{cfg.name}: {name}")
        atomic_write_json(out / "eval.json", report)
    return report


def _find_image(folder: Path, stem: str) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    return None


def plot_rotated_predictions(image: str | Path | np.ndarray, dets: dict[str, torch.Tensor],
                             path: str | Path, gts: dict[str, torch.Tensor] | None = None,
                             score_thr: float = 0.3, title: str = "",
                             classes: tuple[str, ...] = DOTA_CLASSES) -> Path:
    """Draw detections above ``score_thr`` (coloured by class, with scores) over the ground
    truth (dashed white) on one image."""
    plt = pyplot()
    from matplotlib.patches import Polygon    # lazy, as pyplot (rtmdet.utils.io.pyplot)

    img = cv2.imread(str(image)) if not isinstance(image, np.ndarray) else image
    if img is None:
        raise FileNotFoundError(f"{image}: cannot read image")
    h, w = img.shape[:2]
    fig, ax = plt.subplots(figsize=(10, 10 * h / w), dpi=100)
    ax.imshow(img[..., ::-1])
    cmap = plt.get_cmap("tab20")
    if gts is not None:
        for poly in rbox_to_poly(gts["rboxes"].double()).numpy():
            ax.add_patch(Polygon(poly, closed=True, fill=False, ec="white", lw=0.8, ls="--"))
    keep = dets["scores"] >= score_thr
    polys = rbox_to_poly(dets["rboxes"][keep].double()).numpy()
    for poly, s, c in zip(polys, dets["scores"][keep].tolist(), dets["labels"][keep].tolist()):
        colour = cmap(c % 20)
        ax.add_patch(Polygon(poly, closed=True, fill=False, ec=colour, lw=1.2))
        x, y = poly[:, 0].min(), poly[:, 1].min()
        ax.text(x, y, f"{classes[c]} {s:.2f}", color="black", fontsize=5, clip_on=True,
                bbox={"facecolor": colour, "alpha": 0.7, "pad": 0.5, "lw": 0})
    ax.set(xlim=(0, w), ylim=(h, 0), title=title or "rotated predictions")
    ax.axis("off")
    fig.tight_layout()
    return atomic_save_figure(fig, path)
