"""Experiments as data: the command line over ``experiments/*.yaml`` (one YAML per ablation).

The pieces live by concept:

- :mod:`rtmdet.pipeline.spec`: what an experiment file may say, loaded and checked;
- :mod:`rtmdet.pipeline.resolve`: variants resolved into run configs and paper numbers;
- :mod:`rtmdet.pipeline.dvc`: the generated params.yaml/dvc.yaml and the one-off variant.

Snakemake, DVC and ``rtmdet report`` all read the experiment files through them, so there is
one list of ablations. This module only wires them into a CLI::

    python -m rtmdet.pipeline list                 # ablations and their variants
    python -m rtmdet.pipeline check                # resolve every variant (paper + smoke)
    python -m rtmdet.pipeline params > params.yaml # the DVC view of the same list
    python -m rtmdet.pipeline dvc > dvc.yaml
    python -m rtmdet.pipeline resolve --experiment kernel_size --variant k5
"""
from __future__ import annotations

import argparse
import sys

import yaml

from rtmdet.config import ConfigError

from .dvc import dvc_yaml, load_oneoff, params_yaml
from .resolve import resolve, validate
from .spec import EXPERIMENTS_DIR, ExperimentError, list_experiments


def main(argv: list[str] | None = None) -> int:
    """Run one command; a bad experiment file or config is one ``error:`` line and exit 2."""
    p = argparse.ArgumentParser(prog="python -m rtmdet.pipeline",
                                description=__doc__.split("\n")[0])
    p.add_argument("command", choices=["list", "check", "params", "dvc", "resolve"])
    p.add_argument("--dir", default=str(EXPERIMENTS_DIR))
    p.add_argument("--experiment")
    p.add_argument("--variant")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--params", default=None, help="params.yaml whose oneoff section to apply")
    args = p.parse_args(argv)
    try:
        exps = list_experiments(args.dir)
        if args.params:
            exps = load_oneoff(args.params).apply(exps)
        if args.command == "list":
            for name, exp in exps.items():
                print(f"{name:16s} {len(exp.variants):2d} variants  {exp.title}")
        elif args.command == "check":
            for exp in exps.values():
                validate(exp)
            print(f"ok: {len(exps)} experiments, "
                  f"{sum(len(e.variants) for e in exps.values())} variants resolve")
        elif args.command == "params":
            print(params_yaml(exps), end="")
        elif args.command == "dvc":
            print(dvc_yaml(exps), end="")
        else:
            cfg = resolve(exps[args.experiment], args.variant, args.seed)
            print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
    except (ExperimentError, ConfigError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
