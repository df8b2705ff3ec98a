"""Snakemake script: make the COCO-format data the ablations train on, and write a manifest.

``source = coco``: check the real set's annotation files and image folders exist (nothing is
copied). ``source = synthetic``: generate the embedded synthetic set with ``rtmdet data
synth-coco``'s generator; ``source = proxy``: the proxy task (``rtmdet data synth-proxy``). The manifest records which one it was, so every report can say so.
"""
import json
import sys
from pathlib import Path

from rtmdet.pipeline.resolve import DATA_SOURCES
from rtmdet.utils.io import atomic_write_json

snakemake = globals()["snakemake"]  # injected by Snakemake
source = snakemake.params.source
d = {k.split(".", 1)[1]: v for k, v in DATA_SOURCES[source].items() if k.startswith("data.")}
root = Path(d["root"])
with open(snakemake.log[0], "w") as log:
    sys.stdout = sys.stderr = log
    if source == "synthetic":
        from rtmdet.data.synthetic import write_synth_coco
        s = snakemake.params.synthetic
        write_synth_coco(root, s["train"], s["val"], s["seed"], (s["min_size"], s["max_size"]),
                         s["max_objects"], 1)
    elif source == "proxy":
        from rtmdet.data.proxy import write_proxy
        p = snakemake.params.proxy
        write_proxy(root, p["train"], p["val"], p["seed"], workers=snakemake.threads)
    counts = {}
    for split in ("train", "val"):
        ann, images = root / d[f"{split}_ann"], root / d[f"{split}_images"]
        if not ann.exists() or not images.is_dir():
            sys.exit(f"error: {source} data incomplete: need {ann} and {images}/")
        counts[split] = len(json.loads(ann.read_text())["images"])
    atomic_write_json(snakemake.output[0], {"source": source, "root": str(root), "images": counts,
                                            "synthetic": snakemake.params.synthetic
                                            if source == "synthetic" else None,
                                            "proxy": snakemake.params.proxy
                                            if source == "proxy" else None})
    print(f"{source} data at {root}: {counts}")
