"""Measure the official initialisation (runs in the oracle venv; ``make_reference.py`` calls it)
and write ``init_stats.json``.

For every preset and ``SEEDS`` seeds (``torch.manual_seed(seed)`` then the official build and
``init_weights()``), per floating-point state-dict tensor in the order of the preset's
``layout`` (shared tensors once, ``aliases`` skipped): the mean, the standard deviation
(population) and ``mad`` = mean |x − mean| / std (≈ 0.798 for a normal, 0.866 for a uniform:
it tells the two apart at equal std) — each as the average over seeds and its spread (standard
deviation over seeds). ``n`` is the element count. Compact: about 10 kB per preset.

``loss_at_init``: RTMDet-tiny in train mode on ``recipe.make_batch()``, per seed, the official
``loss_cls`` and ``loss_bbox`` (each summed over levels).

The official init is the configs' (the backbone's ImageNet ``Pretrained`` entry removed, so its
class default applies; see ``oracle_env.load_config``). ``backbone_init_cfg_none`` holds the same
statistics and loss for the variant with ``backbone.init_cfg=None`` on a few presets.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import oracle_dump  # noqa: E402
import oracle_env  # noqa: E402
import recipe  # noqa: E402

SEEDS = tuple(range(6))
LOSS_SEEDS = tuple(range(8))
VARIANT_PRESETS = {"rtmdet-tiny": ("det", "tiny"), "rtmdet-l": ("det", "l"),
                   "rtmdet-ins-tiny": ("ins", "tiny"), "rtmdet-r-tiny": ("rotated", "tiny")}


def tensor_stats(t: torch.Tensor) -> tuple[float, float, float]:
    t = t.double().flatten()
    mean = t.mean()
    std = t.std(unbiased=False) if t.numel() > 1 else torch.zeros((), dtype=torch.float64)
    mad = ((t - mean).abs().mean() / std).item() if std > 0 else 0.0
    return mean.item(), std.item(), mad


def _sig(x: float) -> float:
    return float(f"{x:.5g}")


def preset_stats(family: str, size: str, backbone_init_cfg: str = "default") -> dict:
    per_seed, keys, n = [], None, None
    for seed in SEEDS:
        torch.manual_seed(seed)
        _, model = oracle_env.build_official(family, size, backbone_init_cfg)
        layout, aliases = oracle_dump.layout_of(model)
        sd = model.state_dict()
        if keys is None:
            keys = [k for k, _, dt in layout if k not in aliases and sd[k].is_floating_point()]
            n = [sd[k].numel() for k in keys]
        per_seed.append(torch.tensor([tensor_stats(sd[k]) for k in keys], dtype=torch.float64))
    s = torch.stack(per_seed)                                      # (seeds, keys, 3)
    avg, spread = s.mean(0), s.std(0, unbiased=True)
    rows = [[_sig(v) for v in (*a, *b)] + [k_n] for a, b, k_n in
            zip(avg.tolist(), spread.tolist(), n)]
    return {"keys": len(keys), "columns": ["mean", "std", "mad", "mean_sd", "std_sd", "mad_sd",
                                           "n"], "rows": rows}


def loss_at_init(backbone_init_cfg: str = "default") -> dict:
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    images, targets = recipe.make_batch()
    h, w = images.shape[-2:]
    out = {"loss_cls": [], "loss_bbox": []}
    for seed in LOSS_SEEDS:
        torch.manual_seed(seed)
        _, model = oracle_env.build_official("det", "tiny", backbone_init_cfg)
        model.train()
        samples = []
        for t in targets:
            s = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                                            batch_input_shape=(h, w), scale_factor=(1.0, 1.0)))
            s.gt_instances = InstanceData(bboxes=t["boxes"].clone(), labels=t["labels"].clone())
            samples.append(s)
        losses = model.loss(images.clone(), samples)
        for k in out:
            out[k].append(_sig(float(sum(v.item() for v in losses[k]))))
    return {"preset": "rtmdet-tiny", "seeds": list(LOSS_SEEDS), **out}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--presets", nargs="*")
    args = ap.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    oracle_env.import_official(rotated=True)
    from mmengine.logging import MMLogger
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    result = {"seeds": list(SEEDS), "presets": {}}
    for family, sizes in oracle_dump.SIZES.items():
        for size in sizes:
            name = oracle_dump.preset_name(family, size)
            if not args.presets or name in args.presets:
                result["presets"][name] = preset_stats(family, size)
                print(name, result["presets"][name]["keys"], "tensors", flush=True)
    result["loss_at_init"] = loss_at_init()
    print("loss at init", result["loss_at_init"], flush=True)
    # The variant a derived config with ``backbone.init_cfg=None`` gets (ours:
    # ``model.backbone.init=conv_module``), for the sizes the issue measured it on.
    variant = {"presets": {}}
    for name, (family, size) in VARIANT_PRESETS.items():
        if not args.presets or name in args.presets:
            variant["presets"][name] = preset_stats(family, size, "none")
    variant["loss_at_init"] = loss_at_init("none")
    print("loss at init (init_cfg=None)", variant["loss_at_init"], flush=True)
    result["backbone_init_cfg_none"] = variant
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, separators=(",", ":")) + "\n")
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
