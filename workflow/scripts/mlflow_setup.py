"""Snakemake script: open (create/migrate) the MLflow store and get-or-create every selected
ablation's experiment (description from its YAML, training-runs view tag) and parent run, once,
before the parallel train/eval/bench jobs start logging into them."""
import json
import sys

from rtmdet.engine.tracking_store import setup_experiments, tracking_uri
from rtmdet.pipeline.spec import load_experiment
from rtmdet.utils.io import atomic_write_text

snakemake = globals()["snakemake"]  # injected by Snakemake
with open(snakemake.log[0], "w") as log:
    sys.stderr = log
    made = setup_experiments([load_experiment(p) for p in snakemake.input.experiments])
    for name, ids in made.items():
        print(f"{name}: experiment {ids['experiment_id']}, parent run {ids['parent_run_id']}",
              file=log)
    atomic_write_text(snakemake.output[0], json.dumps({"tracking_uri": tracking_uri(),
                                                       "ablations": made}, indent=2) + "\n")
