"""Reading a YAML file whose top level must be a mapping, with one-line errors.

Config files, experiment files and params.yaml are all written by hand, so a typo must end in a
single ``<file>: <what is wrong>`` line rather than a parser traceback. Each caller passes its
own error class (``ConfigError``, ``ExperimentError``) so its CLI catches and prints it the same
way as its other checks. Kept free of torch so Snakemake's DAG parsing stays fast.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def read_yaml_mapping(path: str | Path, error: type[Exception]) -> dict[str, Any]:
    """The file's top-level mapping (``{}`` for an empty file); ``error`` for a missing file,
    invalid YAML or a top level that is not a mapping."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except yaml.YAMLError as e:
        raise error(f"{path}: invalid YAML: {str(e).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise error(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data
