"""Experiment files (``experiments/*.yaml``): what they may say, loaded and checked.

One YAML per paper ablation names a base preset, overrides shared by all its variants, the named
variants (each a few dotted overrides), the seeds, and where the paper's numbers for it live
(``paper/<csv>`` plus which row belongs to which variant). This module only checks the file's
*structure* (known keys, existing presets, a baseline that is a variant), so a typo fails in one
line naming the file and key; whether the overrides make valid configs is
:mod:`rtmdet.pipeline.resolve`'s job.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtmdet.config.presets import PRESETS
from rtmdet.utils.yaml_io import read_yaml_mapping

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS_DIR = ROOT / "experiments"
TEST_SETTINGS = ("main", "ablation", "dota")
_TOP_KEYS = {"title", "paper_ref", "description", "base", "overrides", "variants", "seeds",
             "baseline", "test_setting", "paper", "paper_only", "higher_is_better",
             "equivalence_margin"}
_VARIANT_KEYS = {"label", "base", "overrides", "paper_row", "compare_to", "note", "requires",
                 "scales"}
_PAPER_KEYS = {"csv", "match", "columns", "setting", "latency"}
PAPER_COLUMNS = ("AP", "mask_AP", "params_M", "flops_G", "latency_ms")
# AP points: a paper "no effect" (|Δ| ≤ 0.2 AP) agrees when our whole paired-Δ interval lies in
# ±margin. 0.5 suits the proxy scale (seed std ≈ 1 AP); a file may state its own.
DEFAULT_EQUIVALENCE_MARGIN = 0.5


class ExperimentError(ValueError):
    """An experiment file problem, one line: ``<file>: <key>: <what is wrong>``."""


@dataclass(frozen=True)
class Variant:
    """One row of an ablation table: a few dotted overrides on top of the experiment's."""
    name: str
    label: str
    overrides: dict[str, Any]
    paper_row: str | dict[str, str] | None = None
    note: str = ""
    base: str | None = None             # a different preset (model-size table)
    compare_to: str | None = None       # direction check against this variant, not the baseline
    # Files the run needs that this project cannot make (e.g. an ImageNet-pretrained backbone)
    # and the scales it can run at (None: all): otherwise the row says "not run" and why.
    requires: tuple[str, ...] = ()
    scales: tuple[str, ...] | None = None


@dataclass(frozen=True)
class PaperRef:
    """Where the paper's numbers for this table live, so they are read, never retyped."""
    csv: str
    match: str | None                   # column naming the row (None when rows are dicts)
    columns: dict[str, str]             # our name (AP, params_M, ...) -> CSV column
    setting: str = ""
    latency: str = ""


@dataclass(frozen=True)
class Experiment:
    """One experiment file, structurally checked (its configs are checked when resolved)."""
    name: str
    path: Path
    title: str
    paper_ref: str
    description: str
    base: str
    overrides: dict[str, Any]
    variants: dict[str, Variant]
    seeds: list[int]
    baseline: str
    test_setting: str
    paper: PaperRef | None
    paper_only: list[dict[str, Any]] = field(default_factory=list)
    equivalence_margin: float = DEFAULT_EQUIVALENCE_MARGIN


# ----------------------------------------------------------------------------- loading
def _err(path: Path, key: str, msg: str) -> ExperimentError:
    return ExperimentError(f"{path}: {key}: {msg}")


def _mapping(path: Path, key: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _err(path, key, f"must be a mapping, got {type(value).__name__}")
    return value


def _strings(path: Path, key: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not (isinstance(value, list) and all(isinstance(x, str) and x for x in value)):
        raise _err(path, key, "must be a list of non-empty strings")
    return tuple(value)


def reject_unknown(path: Path, prefix: str, d: dict[str, Any], allowed: set[str]) -> None:
    """A misspelt key must fail loudly: silently ignoring it would run the wrong ablation."""
    extra = sorted(set(d) - allowed)
    if extra:
        raise _err(path, f"{prefix}{extra[0]}", "unknown key")


def load_experiment(path: str | Path) -> Experiment:
    """Read and structurally check one experiment file (configs are checked by :func:`validate`)."""
    path = Path(path)
    raw = read_yaml_mapping(path, ExperimentError)
    reject_unknown(path, "", raw, _TOP_KEYS)
    for key in ("title", "base", "variants", "baseline"):
        if key not in raw:
            raise _err(path, key, "missing")
    if raw["base"] not in PRESETS:
        raise _err(path, "base", f"unknown preset {raw['base']!r}")
    variants: dict[str, Variant] = {}
    for name, v in _mapping(path, "variants", raw["variants"]).items():
        v = _mapping(path, f"variants.{name}", v)
        reject_unknown(path, f"variants.{name}.", v, _VARIANT_KEYS)
        if not str(name).replace("_", "").replace("-", "").isalnum():
            raise _err(path, f"variants.{name}", "names may use letters, digits, - and _ only")
        if v.get("base") is not None and v["base"] not in PRESETS:
            raise _err(path, f"variants.{name}.base", f"unknown preset {v['base']!r}")
        variants[str(name)] = Variant(str(name), str(v.get("label", name)),
                                      _mapping(path, f"variants.{name}.overrides", v.get("overrides")),
                                      v.get("paper_row"), str(v.get("note", "")), v.get("base"),
                                      v.get("compare_to"),
                                      _strings(path, f"variants.{name}.requires", v.get("requires")),
                                      (_strings(path, f"variants.{name}.scales", v["scales"])
                                       if v.get("scales") is not None else None))
    if not variants:
        raise _err(path, "variants", "at least one variant is needed")
    if raw["baseline"] not in variants:
        raise _err(path, "baseline", f"{raw['baseline']!r} is not one of the variants")
    for v in variants.values():
        if v.compare_to is not None and v.compare_to not in variants:
            raise _err(path, f"variants.{v.name}.compare_to", f"{v.compare_to!r} is not a variant")
    seeds = raw.get("seeds", [0, 1, 2])
    if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) for s in seeds)):
        raise _err(path, "seeds", "must be a non-empty list of integers")
    setting = raw.get("test_setting", "ablation")
    if setting not in TEST_SETTINGS:
        raise _err(path, "test_setting", f"must be one of {TEST_SETTINGS}")
    margin = raw.get("equivalence_margin", DEFAULT_EQUIVALENCE_MARGIN)
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or margin <= 0:
        raise _err(path, "equivalence_margin", "must be a positive number (AP points)")
    paper = None
    if raw.get("paper") is not None:
        p = _mapping(path, "paper", raw["paper"])
        reject_unknown(path, "paper.", p, _PAPER_KEYS)
        cols = _mapping(path, "paper.columns", p.get("columns"))
        bad = sorted(set(cols) - set(PAPER_COLUMNS))
        if bad:
            raise _err(path, f"paper.columns.{bad[0]}", f"must be one of {PAPER_COLUMNS}")
        paper = PaperRef(str(p.get("csv")), p.get("match"), {k: str(c) for k, c in cols.items()},
                         str(p.get("setting", "")), str(p.get("latency", "")))
    return Experiment(name=path.stem, path=path, title=str(raw["title"]),
                      paper_ref=str(raw.get("paper_ref", "")),
                      description=str(raw.get("description", "")).strip(), base=raw["base"],
                      overrides=_mapping(path, "overrides", raw.get("overrides")),
                      variants=variants, seeds=seeds, baseline=raw["baseline"],
                      test_setting=setting, paper=paper,
                      paper_only=list(raw.get("paper_only") or []),
                      equivalence_margin=float(margin))


def list_experiments(directory: str | Path = EXPERIMENTS_DIR) -> dict[str, Experiment]:
    """All experiments, by name (the file stem), in file-name order."""
    files = sorted(Path(directory).glob("*.yaml"))
    return {f.stem: load_experiment(f) for f in files}
