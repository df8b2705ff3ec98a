"""Snakemake script: resolve one run's config from ``params.spec`` (base preset + dotted
overrides, see rtmdet.pipeline.resolve.run_spec), validate it and write it as YAML."""
import sys

from rtmdet.config import load_config, save_config

snakemake = globals()["snakemake"]  # injected by Snakemake
with open(snakemake.log[0], "w") as log:
    sys.stderr = log
    spec = snakemake.params.spec
    save_config(load_config(spec["base"], spec["overrides"]), snakemake.output[0])
    print(f"wrote {snakemake.output[0]}", file=log)
