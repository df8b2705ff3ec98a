"""Experiments as data: one YAML per paper ablation, resolved into validated :class:`Config`\\ s.

An experiment file names a base preset, overrides shared by all its variants, the named variants
(each a few dotted overrides), the seeds, and where the paper's numbers for it live
(``paper/<csv>`` plus which row belongs to which variant). Snakemake (wildcards), DVC
(``params.yaml``/``dvc.yaml``) and ``rtmdet report`` all read these files through this module,
so there is one list of ablations; ``tests/test_experiments.py`` fails when the three disagree.

Resolution order of one run's config (each layer a plain dotted-override dict, so a run folder's
``config.yaml`` says exactly what ran)::

    preset (base) → experiment overrides → variant overrides → data source → scale → seed/tags

A *scale* (``config/config.yaml: scales``) shrinks the same DAG to CPU minutes (smoke) or keeps
the paper's schedule (paper). A scale may override an experiment's shared settings (its schedule)
but not a key a variant sets: a smoke run must never change what is being ablated.

    python -m rtmdet.experiments list                 # ablations and their variants
    python -m rtmdet.experiments check                # resolve every variant (paper + smoke)
    python -m rtmdet.experiments params > params.yaml # the DVC view of the same list
    python -m rtmdet.experiments dvc > dvc.yaml
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .config import PRESETS, Config, ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS_DIR = ROOT / "experiments"
PAPER_DIR = ROOT / "paper"
TEST_SETTINGS = ("main", "ablation", "dota")
_TOP_KEYS = {"title", "paper_ref", "description", "base", "overrides", "variants", "seeds",
             "baseline", "test_setting", "paper", "paper_only", "higher_is_better"}
_VARIANT_KEYS = {"label", "base", "overrides", "paper_row", "compare_to", "note"}
_PAPER_KEYS = {"csv", "match", "columns", "setting", "latency"}
PAPER_COLUMNS = ("AP", "mask_AP", "params_M", "flops_G", "latency_ms")

# Data sources: what changes in the config when the real COCO set replaces the synthetic one.
DATA_SOURCES: dict[str, dict[str, Any]] = {
    "synthetic": {"data.format": "coco", "data.root": "data/synth_coco",
                  "data.train_ann": "annotations/instances_train.json",
                  "data.val_ann": "annotations/instances_val.json",
                  "data.train_images": "images/train", "data.val_images": "images/val",
                  "model.head.num_classes": 8},
    "coco": {"data.format": "coco", "data.root": "data/coco",
             "data.train_ann": "annotations/instances_train2017.json",
             "data.val_ann": "annotations/instances_val2017.json",
             "data.train_images": "train2017", "data.val_images": "val2017",
             "model.head.num_classes": 80},
}


class ExperimentError(ValueError):
    """An experiment file problem, one line: ``<file>: <key>: <what is wrong>``."""


@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    overrides: dict[str, Any]
    paper_row: str | dict[str, str] | None = None
    note: str = ""
    base: str | None = None             # a different preset (model-size table)
    compare_to: str | None = None       # direction check against this variant, not the baseline


@dataclass(frozen=True)
class PaperRef:
    csv: str
    match: str | None                   # column naming the row (None when rows are dicts)
    columns: dict[str, str]             # our name (AP, params_M, ...) -> CSV column
    setting: str = ""
    latency: str = ""


@dataclass(frozen=True)
class Experiment:
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


@dataclass(frozen=True)
class Scale:
    """How big the runs are. ``width_mult`` scales backbone width and neck channels together so
    relative differences between variants (sizes, backbone/neck split) survive the shrink."""
    name: str
    num_seeds: int = 1
    width_mult: float = 1.0
    overrides: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    @classmethod
    def from_dict(cls, name: str, d: dict[str, Any]) -> "Scale":
        return cls(name=name, num_seeds=int(d.get("num_seeds", 1)),
                   width_mult=float(d.get("width_mult", 1.0)),
                   overrides=dict(d.get("overrides") or {}), description=d.get("description", ""))


PAPER_SCALE = Scale("paper", num_seeds=3)


# ----------------------------------------------------------------------------- loading
def _err(path: Path, key: str, msg: str) -> ExperimentError:
    return ExperimentError(f"{path}: {key}: {msg}")


def _mapping(path: Path, key: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _err(path, key, f"must be a mapping, got {type(value).__name__}")
    return value


def _unknown(path: Path, prefix: str, d: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(d) - allowed)
    if extra:
        raise _err(path, f"{prefix}{extra[0]}", "unknown key")


def load_experiment(path: str | Path) -> Experiment:
    """Read and structurally check one experiment file (configs are checked by :func:`validate`)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ExperimentError(f"{path}: file not found") from None
    except yaml.YAMLError as e:
        raise ExperimentError(f"{path}: invalid YAML: {str(e).splitlines()[0]}") from None
    raw = _mapping(path, "(top level)", raw)
    _unknown(path, "", raw, _TOP_KEYS)
    for key in ("title", "base", "variants", "baseline"):
        if key not in raw:
            raise _err(path, key, "missing")
    if raw["base"] not in PRESETS:
        raise _err(path, "base", f"unknown preset {raw['base']!r}")
    variants: dict[str, Variant] = {}
    for name, v in _mapping(path, "variants", raw["variants"]).items():
        v = _mapping(path, f"variants.{name}", v)
        _unknown(path, f"variants.{name}.", v, _VARIANT_KEYS)
        if not str(name).replace("_", "").replace("-", "").isalnum():
            raise _err(path, f"variants.{name}", "names may use letters, digits, - and _ only")
        if v.get("base") is not None and v["base"] not in PRESETS:
            raise _err(path, f"variants.{name}.base", f"unknown preset {v['base']!r}")
        variants[str(name)] = Variant(str(name), str(v.get("label", name)),
                                      _mapping(path, f"variants.{name}.overrides", v.get("overrides")),
                                      v.get("paper_row"), str(v.get("note", "")), v.get("base"),
                                      v.get("compare_to"))
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
    paper = None
    if raw.get("paper") is not None:
        p = _mapping(path, "paper", raw["paper"])
        _unknown(path, "paper.", p, _PAPER_KEYS)
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
                      paper_only=list(raw.get("paper_only") or []))


def list_experiments(directory: str | Path = EXPERIMENTS_DIR) -> dict[str, Experiment]:
    """All experiments, by name (the file stem), in file-name order."""
    files = sorted(Path(directory).glob("*.yaml"))
    return {f.stem: load_experiment(f) for f in files}


# ----------------------------------------------------------------------------- resolving
def _scaled_width(cfg: Config, mult: float) -> dict[str, Any]:
    if mult == 1.0:
        return {}
    return {"model.backbone.widen_factor": round(cfg.model.backbone.widen_factor * mult, 6),
            "model.neck.out_channels": max(8, int(round(cfg.model.neck.out_channels * mult)))}


def layers(exp: Experiment, variant: str, scale: Scale = PAPER_SCALE,
           data_source: str = "synthetic") -> list[tuple[str, dict[str, Any]]]:
    """The override layers of one run, in order, each named for error messages."""
    if variant not in exp.variants:
        raise ExperimentError(f"{exp.path}: variants.{variant}: no such variant "
                              f"(have {', '.join(exp.variants)})")
    if data_source not in DATA_SOURCES:
        raise ExperimentError(f"data source {data_source!r}: expected one of {list(DATA_SOURCES)}")
    clash = sorted(set(exp.variants[variant].overrides) & set(scale.overrides))
    # RTMDet-R presets already point at the DOTA patches (data/dota_split/<mode>, 15 classes);
    # the COCO-vs-synthetic choice does not apply to them.
    data = {} if model_type(exp, variant) == "rotated" else DATA_SOURCES[data_source]
    if clash:
        raise ExperimentError(f"{exp.path}: variants.{variant}: {clash[0]}: also set by scale "
                              f"{scale.name!r}; a scale may not change what is ablated")
    return [(f"{exp.path}: overrides", exp.overrides),
            (f"{exp.path}: variants.{variant}", exp.variants[variant].overrides),
            (f"data source {data_source}", data),
            (f"scale {scale.name}", scale.overrides)]


def run_spec(exp: Experiment, variant: str, seed: int = 0, scale: Scale = PAPER_SCALE,
             data_source: str = "synthetic", work_dir: str | None = None) -> dict[str, Any]:
    """``{"base": preset, "overrides": {dotted: value}}`` of one run: what the experiment files
    and the scale *say*, without the schema's defaults. This, not the fully resolved config, is
    Snakemake's rerun trigger: adding a config field (or changing a default in rtmdet/) must not
    retrain every run, the same policy as for any other code edit."""
    chain = layers(exp, variant, scale, data_source)
    base = exp.variants[variant].base or exp.base
    cfg: Config | str = base
    merged: dict[str, Any] = {}
    for name, overrides in chain:
        try:
            cfg = load_config(cfg, overrides)
        except ConfigError as e:
            raise ExperimentError(f"{name}: {str(e).split(': ', 1)[-1]}") from None
        merged.update(overrides)
    assert isinstance(cfg, Config)
    merged.update(_scaled_width(cfg, scale.width_mult))
    merged.update({"seed": seed, "name": f"{exp.name}/{variant}",
                   "tags": {"ablation": exp.name, "variant": variant, "scale": scale.name,
                            "test_setting": exp.test_setting, "data": data_source},
                   "work_dir": work_dir or f"runs/{exp.name}/{variant}/seed{seed}"})
    return {"base": base, "overrides": merged}


def resolve(exp: Experiment, variant: str, seed: int = 0, scale: Scale = PAPER_SCALE,
            data_source: str = "synthetic", work_dir: str | None = None) -> Config:
    """The validated config of one (variant, seed) run at ``scale``."""
    spec = run_spec(exp, variant, seed, scale, data_source, work_dir)
    return load_config(spec["base"], spec["overrides"])


def model_type(exp: Experiment, variant: str) -> str:
    """det / ins / rotated: decides the data a run needs and how it is scored."""
    base = exp.variants[variant].base or exp.base
    return str(PRESETS[base].get("model", {}).get("type", "det"))


def metric_name(exp: Experiment) -> str:
    """What the table's AP column is (every variant of a table is scored the same way)."""
    if model_type(exp, exp.baseline) == "rotated":
        return "DOTA VOC07 11-point mAP at rotated IoU 0.5 (×100)"
    return "COCO box AP (×100)"


def seeds_for(exp: Experiment, scale: Scale) -> list[int]:
    return exp.seeds[:max(1, scale.num_seeds)]


def config_digest(cfg: Config) -> str:
    """Hash of everything that determines a training result (Snakemake's rerun trigger)."""
    d = cfg.to_dict()
    d.pop("work_dir", None)
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def validate(exp: Experiment, scales: list[Scale] | None = None) -> dict[str, list[Config]]:
    """Resolve every variant at every scale (and check the paper rows it names exist)."""
    out: dict[str, list[Config]] = {}
    for v in exp.variants:
        out[v] = [resolve(exp, v, 0, s) for s in (scales or [PAPER_SCALE])]
    paper_values(exp)
    return out


# ----------------------------------------------------------------------------- paper numbers
def _read_csv(name: str) -> list[dict[str, str]]:
    path = PAPER_DIR / name
    if not path.exists():
        raise ExperimentError(f"paper/{name}: file not found")
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _find_row(rows: list[dict[str, str]], match: str | None, key: str | dict[str, str],
              where: str) -> dict[str, str]:
    want = key if isinstance(key, dict) else {match or "": key}
    hits = [r for r in rows if all(r.get(c, "").strip() == str(v) for c, v in want.items())]
    if len(hits) != 1:
        raise ExperimentError(f"{where}: paper_row {key!r} matches {len(hits)} rows, expected 1")
    return hits[0]


def _cell(row: dict[str, str], column: str) -> float | str:
    """A number, or the CSV's own words ('not found') — never a guess."""
    raw = row.get(column, "").strip()
    try:
        return float(raw)
    except ValueError:
        return raw or "not found"


def paper_values(exp: Experiment) -> dict[str, dict[str, Any]]:
    """Per variant: the paper's AP/params/FLOPs/latency cells plus the row's confidence.
    Variants without a paper row get ``{}`` (shown as 'no paper row')."""
    if exp.paper is None:
        return {v: {} for v in exp.variants}
    rows = _read_csv(exp.paper.csv)
    out: dict[str, dict[str, Any]] = {}
    for name, v in exp.variants.items():
        if v.paper_row is None:
            out[name] = {}
            continue
        row = _find_row(rows, exp.paper.match, v.paper_row, f"{exp.path}: variants.{name}")
        cells: dict[str, Any] = {k: _cell(row, c) for k, c in exp.paper.columns.items()}
        cells["confidence"] = row.get("confidence", "")
        cells["source"] = row.get("source", "")
        out[name] = cells
    return out


def paper_only_rows(exp: Experiment) -> list[dict[str, Any]]:
    """Paper rows we do not run (e.g. a YOLOX baseline): the row's numbers plus our reason."""
    if exp.paper is None:
        return []
    rows = _read_csv(exp.paper.csv)
    out = []
    for i, item in enumerate(exp.paper_only):
        row = _find_row(rows, exp.paper.match, item["paper_row"], f"{exp.path}: paper_only[{i}]")
        out.append({"label": item.get("label", str(item["paper_row"])),
                    "reason": item.get("reason", "not run"),
                    **{k: _cell(row, c) for k, c in exp.paper.columns.items()},
                    "confidence": row.get("confidence", "")})
    return out


# ----------------------------------------------------------------------------- one-off variant
def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.update(_flatten(v, f"{key}.") if isinstance(v, dict) else {key: v})
    return out


def parse_overrides(raw: Any, where: str = "oneoff.overrides") -> dict[str, Any]:
    """Dotted overrides from what ``dvc exp run -S`` can write: a nested mapping
    (``-S '+oneoff.overrides.train.base_lr=0.002'`` nests on the dots) or a list of
    ``"key=value"`` strings (``-S "oneoff.set=['train.base_lr=0.002']"``) (values parsed as YAML, so ``7`` is an int and ``false`` a bool)."""
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return _flatten(raw)
    if isinstance(raw, list):
        out: dict[str, Any] = {}
        for item in raw:
            if not isinstance(item, str) or "=" not in item:
                raise ExperimentError(f"{where}: {item!r}: expected 'dotted.key=value'")
            key, value = item.split("=", 1)
            out[key.strip()] = yaml.safe_load(value) if value.strip() else None
        return out
    raise ExperimentError(f"{where}: must be a mapping or a list of 'key=value', "
                          f"got {type(raw).__name__}")


@dataclass(frozen=True)
class OneOff:
    """One extra variant of one ablation, set from params.yaml without editing experiments/:

        dvc exp run -S oneoff.ablation=kernel_size -S oneoff.name=k9 \\
            -S '+oneoff.overrides.model.backbone.kernel_size=9'

    It is the ablation's ``base_variant`` (default: its baseline) plus ``overrides``, so it runs,
    is evaluated and gets a row in the table like any other variant (no paper row)."""
    ablation: str = ""
    name: str = "oneoff"
    base_variant: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)

    def apply(self, experiments: dict[str, Experiment]) -> dict[str, Experiment]:
        if not self.ablation:
            return experiments
        if self.ablation not in experiments:
            raise ExperimentError(f"params.yaml: oneoff.ablation: unknown ablation "
                                  f"{self.ablation!r} (have {', '.join(experiments)})")
        return {**experiments, self.ablation: with_variant(experiments[self.ablation], self)}


def with_variant(exp: Experiment, oneoff: OneOff) -> Experiment:
    """``exp`` plus the one-off variant (checked: a new name, a known base variant, overrides
    that resolve to a valid config)."""
    from dataclasses import replace
    name, base = oneoff.name, oneoff.base_variant or exp.baseline
    where = f"params.yaml: oneoff ({exp.name})"
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ExperimentError(f"{where}: name {name!r}: letters, digits, - and _ only")
    if name in exp.variants:
        raise ExperimentError(f"{where}: name {name!r} is already a variant of {exp.path}")
    if base not in exp.variants:
        raise ExperimentError(f"{where}: base_variant {base!r} is not a variant of {exp.path}")
    b = exp.variants[base]
    v = Variant(name, f"{name} (one-off: {base} + {', '.join(f'{k}={val}' for k, val in oneoff.overrides.items()) or 'nothing'})",
                {**b.overrides, **oneoff.overrides}, None, "one-off variant from params.yaml",
                b.base, base)
    new = replace(exp, variants={**exp.variants, name: v})
    resolve(new, name)                              # a bad key/value fails here, in one line
    return new


def load_oneoff(params_path: str | Path) -> OneOff:
    """The ``oneoff`` section of params.yaml (absent or empty ablation: no extra variant)."""
    path = Path(params_path)
    raw = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
    o = raw.get("oneoff") or {}
    if not isinstance(o, dict):
        raise ExperimentError(f"{path}: oneoff: must be a mapping")
    _unknown(path, "oneoff.", o, {"ablation", "name", "base_variant", "overrides", "set"})
    overrides = {**parse_overrides(o.get("overrides")),
                 **parse_overrides(o.get("set"), "oneoff.set")}
    return OneOff(str(o.get("ablation") or ""), str(o.get("name") or "oneoff"),
                  str(o.get("base_variant") or ""), overrides)


# ----------------------------------------------------------------------------- DVC view
def params_doc(experiments: dict[str, Experiment], profile: str = "smoke") -> dict[str, Any]:
    """params.yaml: the profile DVC runs Snakemake with, and the ablations (one stage each)."""
    return {"profile": profile,
            # One-off variant (empty ablation: none); see OneOff and README "Pipeline".
            "oneoff": {"ablation": "", "name": "oneoff", "base_variant": "", "overrides": {},
                       "set": []},
            "ablations": {name: {"file": f"experiments/{name}.yaml", "variants": list(exp.variants)}
                          for name, exp in experiments.items()}}


def dvc_doc(experiments: dict[str, Experiment]) -> dict[str, Any]:
    """dvc.yaml: data, one stage per ablation table (its command is the table's Snakemake target,
    so Snakemake stays the only scheduler) and the index. Code (rtmdet/, workflow/) is a dep:
    DVC then asks Snakemake, whose own rerun policy decides what really needs recomputing.
    Reports are ``cache: false`` outs: versioned in git (readable on the forge), hashed by DVC;
    the generated data is cached by DVC and ignored by git."""
    smk = "snakemake --profile workflow/profiles/${profile}"
    code = ["rtmdet", "workflow", "Snakefile", "config/config.yaml"]
    stages: dict[str, Any] = {"prepare_coco": {
        "cmd": f"{smk} data/prepared/coco.json",
        "deps": ["rtmdet/data", "workflow/scripts/prepare_coco.py", "config/config.yaml"],
        "params": ["profile"],
        # persist: DVC must not delete the data before asking Snakemake, or the fresh files'
        # mtimes would make Snakemake retrain every run.
        "outs": [{o: {"persist": True}} for o in ("data/prepared/coco.json", "data/synth_coco")]}}
    rotated = {n for n, e in experiments.items() if model_type(e, e.baseline) == "rotated"}
    if rotated:     # RTMDet-R tables train on DOTA patches (data/dota when present, else synthetic)
        stages["prepare_dota"] = {
            "cmd": f"{smk} dota_patches",
            "deps": ["rtmdet/data", "workflow/rules/data.smk", "config/config.yaml"],
            "params": ["profile"],
            "outs": [{o: {"persist": True}} for o in ("data/dota_split", "data/synth_dota")]}
    for name in experiments:
        data = "data/dota_split" if name in rotated else "data/prepared/coco.json"
        figs = [f"reports/figures/{name}{s}.png" for s in ("", "_loss", "_pr")]
        stages[f"table_{name}"] = {
            "cmd": f"{smk} reports/tables/{name}.md",
            "deps": [f"experiments/{name}.yaml", *code, data],
            "params": ["profile", "oneoff", f"ablations.{name}"],
            "outs": [{o: {"cache": False}} for o in (f"reports/tables/{name}.md", *figs)],
            "metrics": [{f"reports/tables/{name}.json": {"cache": False}}],
            "plots": [{f"reports/tables/{name}.csv": {"cache": False, "x": "variant",
                                                       "y": "ours_AP_mean"}}]}
    stages["index"] = {
        "cmd": f"{smk} reports/README.md",
        "deps": ["rtmdet/report.py", "rtmdet/report_figures.py",
                 *[f"reports/tables/{n}.json" for n in experiments]],
        "params": ["profile"],
        "outs": [{o: {"cache": False}}
                 for o in ("reports/README.md", "reports/figures/speed_accuracy.png")]}
    return {"stages": stages}


def _main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rtmdet.experiments", description=__doc__.split("\n")[0])
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
            print(PARAMS_HEADER + yaml.safe_dump(params_doc(exps), sort_keys=False), end="")
        elif args.command == "dvc":
            print(DVC_HEADER + yaml.safe_dump(dvc_doc(exps), sort_keys=False), end="")
        else:
            cfg = resolve(exps[args.experiment], args.variant, args.seed)
            print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
    except (ExperimentError, ConfigError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


PARAMS_HEADER = """\
# DVC parameters, generated from experiments/*.yaml by `python -m rtmdet.experiments params`
# (tests/test_experiments.py fails if it drifts). `profile` picks workflow/profiles/<profile>:
#   dvc exp run -S profile=paper
# `oneoff` adds one extra variant (base variant + dotted overrides) to one ablation:
#   dvc exp run -S oneoff.ablation=kernel_size -S oneoff.name=k9 \\
#       -S '+oneoff.overrides.model.backbone.kernel_size=9' -S '+oneoff.overrides.model.neck.kernel_size=9'
#   (or -S "oneoff.set=['model.backbone.kernel_size=9','model.neck.kernel_size=9']")
"""
DVC_HEADER = """\
# Generated from experiments/*.yaml by `python -m rtmdet.experiments dvc` (checked by
# tests/test_experiments.py): one stage per ablation table, each calling its Snakemake target.
"""

if __name__ == "__main__":
    sys.exit(_main())
