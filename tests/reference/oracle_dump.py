"""Run the official model of each preset on the recipe's weights and write its reference file
(runs in the oracle venv; ``make_reference.py`` calls it).

Per preset one ``<preset>.pt`` (``torch.load(..., weights_only=True)``):

- ``layout``: ``[(key, shape, dtype)]`` of the official state dict and ``aliases`` (keys holding
  the same tensor as an earlier key: the shared head convs) — what the recipe needs to rebuild
  the weights;
- ``raw64``: the official head outputs in float64 (``model.double()``): ``cls_scores``,
  ``bbox_preds`` per level (distances × stride), Ins adds ``kernel_preds`` and ``mask_feats``, R
  adds ``angle_preds``;
- ``dets``: per image, the official float32 ``predict`` (``rescale=False``) under ``test_cfg``:
  ``bboxes`` (xyxy; R: (cx, cy, w, h, θ) le90), ``scores``, ``labels``; Ins adds
  ``masks_packed`` (bits of the (N, H, W) masks, big-endian, row-major) and ``masks_shape``;
- ``meta``: versions, config file, recipe name, ``cls_shift``, the weights' checksum, and the
  official model's own float32-vs-float64 drift (how much float32 rounding alone moves it).
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import oracle_env  # noqa: E402
import recipe  # noqa: E402

SIZES = {"det": ("tiny", "s", "m", "l", "x"), "ins": ("tiny", "s", "m", "l", "x"),
         "rotated": ("tiny", "s", "m", "l")}
TEST_CFG = {
    "det": dict(nms_pre=30000, min_bbox_size=0, score_thr=0.05,
                nms=dict(type="nms", iou_threshold=0.6), max_per_img=100),
    "ins": dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05,
                nms=dict(type="nms", iou_threshold=0.6), max_per_img=100, mask_thr_binary=0.5),
    "rotated": dict(nms_pre=2000, min_bbox_size=0, score_thr=0.05,
                    nms=dict(type="nms_rotated", iou_threshold=0.1), max_per_img=2000),
}
TARGET_CANDIDATES = 40     # (prior, class) pairs above score_thr per image, before NMS
MARGIN = 2e-4              # logits; float32 rounding moves them ~1e-5


def preset_name(family: str, size: str) -> str:
    return {"det": "rtmdet-", "ins": "rtmdet-ins-", "rotated": "rtmdet-r-"}[family] + size


def layout_of(model: torch.nn.Module) -> tuple[list, dict[str, str]]:
    """Official keys, shapes, dtypes, and which keys are the same tensor as an earlier one."""
    layout, aliases, first = [], {}, {}
    for key, t in model.state_dict().items():
        layout.append((key, list(t.shape), str(t.dtype).replace("torch.", "")))
        ident = (t.data_ptr(), tuple(t.shape), tuple(t.stride()))
        if t.numel() and ident in first:
            aliases[key] = first[ident]
        else:
            first.setdefault(ident, key)
    return layout, aliases


def raw_outputs(model: torch.nn.Module, x: torch.Tensor) -> dict:
    with torch.no_grad():
        out = model.bbox_head(model.extract_feat(x))
    names = {2: ("cls_scores", "bbox_preds"), 3: ("cls_scores", "bbox_preds", "angle_preds"),
             4: ("cls_scores", "bbox_preds", "kernel_preds", "mask_feats")}[len(out)]
    if len(out) == 3 and out[2][0].shape[1] != 1:
        raise RuntimeError("unexpected head output layout")
    return {n: (o if torch.is_tensor(o) else [t.clone() for t in o]) for n, o in zip(names, out)}


def choose_cls_shift(cls_scores: list[torch.Tensor], score_thr: float) -> float:
    """The classifier-bias shift (3 decimals) that lets about ``TARGET_CANDIDATES`` pairs per
    image pass, moved down until no pair lies within ``MARGIN`` logits of the threshold, so
    float32 rounding cannot flip a candidate in or out."""
    n = cls_scores[0].shape[0]
    logits = torch.cat([c.reshape(n, -1) for c in cls_scores], 1).double()
    kth = logits.topk(TARGET_CANDIDATES, dim=1).values[:, -1].mean().item()
    thr = math.log(score_thr / (1 - score_thr))
    shift = round(thr - kth, 3)
    while ((logits + shift - thr).abs() < MARGIN).any():
        shift = round(shift - 0.001, 3)
    return shift


def pack_masks(masks: torch.Tensor) -> torch.Tensor:
    n = masks.shape[0]
    bits = masks.reshape(n, -1).to(torch.uint8)
    pad = (-bits.shape[1]) % 8
    bits = torch.cat([bits, bits.new_zeros(n, pad)], 1).reshape(n, -1, 8)
    weights = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8)
    return (bits * weights).sum(-1).to(torch.uint8)


def official_predict(model: torch.nn.Module, family: str, x: torch.Tensor) -> list[dict]:
    from mmdet.structures import DetDataSample
    from mmengine.config import ConfigDict

    model.bbox_head.test_cfg = ConfigDict(TEST_CFG[family])
    h, w = x.shape[-2:]
    samples = [DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                                           batch_input_shape=(h, w), scale_factor=(1.0, 1.0)))
               for _ in range(x.shape[0])]
    with torch.no_grad():
        results = model.predict(x, samples, rescale=False)
    dets = []
    for r in results:
        p = r.pred_instances
        boxes = p.bboxes.tensor if hasattr(p.bboxes, "tensor") else p.bboxes
        d = {"bboxes": boxes.clone(), "scores": p.scores.clone(), "labels": p.labels.clone()}
        if family == "ins":
            d["masks_packed"] = pack_masks(p.masks)
            d["masks_shape"] = torch.tensor(list(p.masks.shape))
        dets.append(d)
    return dets


def dump_preset(family: str, size: str, out_dir: Path) -> Path:
    cfg, model = oracle_env.build_official(family, size)
    layout, aliases = layout_of(model)
    x = recipe.make_input()
    sd = recipe.make_state_dict(layout, aliases, 0.0)
    model.load_state_dict(sd, strict=True)
    shift = choose_cls_shift(raw_outputs(model, x)["cls_scores"], TEST_CFG[family]["score_thr"])
    sd = recipe.make_state_dict(layout, aliases, shift)
    model.load_state_dict(sd, strict=True)
    dets = official_predict(model, family, x)
    raw32 = raw_outputs(model, x)
    raw64 = raw_outputs(model.double(), x.double())
    drift = max((a.double() - b).abs().max().item()
                for k in raw64 for a, b in zip(_as_list(raw32[k]), _as_list(raw64[k])))
    import mmcv
    import mmdet
    import mmengine
    meta = {"preset": preset_name(family, size), "family": family,
            "config": oracle_env.config_path(family, size).name, "recipe": recipe.RECIPE,
            "cls_shift": shift, "checksum": recipe.checksum(sd),
            "input_shape": list(recipe.INPUT_SHAPE), "test_cfg": TEST_CFG[family],
            "official_fp32_vs_fp64_max_abs": drift,
            "versions": {"torch": str(torch.__version__), "mmdet": mmdet.__version__,
                         "mmengine": mmengine.__version__, "mmcv-lite": mmcv.__version__}}
    if family == "rotated":
        import mmrotate
        meta["versions"]["mmrotate"] = f"{mmrotate.__version__} (dev-1.x {_mmrotate_commit()})"
    path = out_dir / f"{meta['preset']}.pt"
    tmp = path.with_suffix(".tmp")
    torch.save({"layout": layout, "aliases": aliases, "raw64": raw64, "dets": dets,
                "meta": meta}, tmp)
    torch.load(tmp, weights_only=True)  # the tests load it so: plain types only
    os.replace(tmp, path)
    n = [len(d["scores"]) for d in dets]
    print(f"{meta['preset']}: shift {shift}, dets {n}, fp32 drift {drift:.2e}, "
          f"{path.stat().st_size / 1e3:.0f} kB", flush=True)
    return path


def _as_list(v):
    return v if isinstance(v, list) else [v]


def _mmrotate_commit() -> str:
    f = oracle_env.MMROTATE_SRC / "COMMIT"
    return f.read_text().strip() if f.exists() else "unknown"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--presets", nargs="*", help="e.g. rtmdet-tiny rtmdet-r-s (default: all)")
    args = ap.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    logging.getLogger("mmengine").setLevel(logging.WARNING)
    oracle_env.import_official(rotated=True)
    from mmengine.logging import MMLogger
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    for family, sizes in SIZES.items():
        for size in sizes:
            if not args.presets or preset_name(family, size) in args.presets:
                dump_preset(family, size, args.out)


if __name__ == "__main__":
    main()
