"""Snakemake script: params and FLOPs (OpenMMLab convention, 640x640; 1024x1024 for RTMDet-R,
the DOTA table's patch size) of every variant of one ablation at paper scale, so each table shows
ours next to the paper's at any run scale."""

import torch

from rtmdet.models.build import build_model
from rtmdet.bench.complexity import CONVENTION, complexity
from rtmdet.config import ModelConfig
from rtmdet.utils.io import atomic_write_json

snakemake = globals()["snakemake"]  # injected by Snakemake
torch.set_num_threads(snakemake.threads)
sizes = {v: 1024 if m.get("type") == "rotated" else 640 for v, m in snakemake.params.models.items()}
out = {"size": max(sizes.values(), default=640), "convention": CONVENTION, "variants": {}}
with open(snakemake.log[0], "w") as log:
    for variant, model in snakemake.params.models.items():
        c = complexity(build_model(ModelConfig.model_validate(model)), sizes[variant])
        out["variants"][variant] = {"params": c["params"], "flops": c["flops"]}
        print(f"{variant}: {c['params']['total'] / 1e6:.3f} M params, "
              f"{c['flops']['total'] / 1e9:.3f} G FLOPs", file=log)
atomic_write_json(snakemake.output[0], out)
