"""Snakemake script: write one run's resolved config (``params.config``) as YAML, validated again
so a hand-edited experiment that slipped past the DAG still stops here with one line."""
import sys

from rtmdet.config import Config, save_config

snakemake = globals()["snakemake"]  # injected by Snakemake
with open(snakemake.log[0], "w") as log:
    sys.stderr = log
    cfg = Config.model_validate(snakemake.params.config)
    save_config(cfg, snakemake.output[0])
    print(f"wrote {snakemake.output[0]}", file=log)
