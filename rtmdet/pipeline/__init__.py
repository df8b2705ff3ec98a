"""The ablation study as data: experiment files and their schema (``spec``), variants resolved
into run configs and paper numbers (``resolve``), the generated DVC params/stages (``dvc``), the
``python -m rtmdet.pipeline`` command line over them (``experiments``) and the rendered tables
and figures (``report*``). It reads run folders (eval.json, bench.json, metrics.csv) rather than
calling training or evaluation code: Snakemake runs those through the ``rtmdet`` CLI.
"""
