"""An experiment's variants resolved: into the validated :class:`Config` of each run, and into
the paper's numbers each is compared with.

Resolution order of one run's config (each layer a plain dotted-override dict, so a run folder's
``config.yaml`` says exactly what ran)::

    preset (base) → experiment overrides → variant overrides → data source → scale → seed/tags

A *scale* (``config/config.yaml: scales``) shrinks the same DAG to CPU minutes (smoke) or keeps
the paper's schedule (paper). A scale may override an experiment's shared settings (its schedule)
but not a key a variant sets: a smoke run must never change what is being ablated.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtmdet.config import PRESETS, Config, ConfigError, load_config, save_config

from .spec import ROOT, Experiment, ExperimentError

PAPER_DIR = ROOT / "paper"

# Data sources: what changes in the config when the real COCO set replaces the synthetic one.
DATA_SOURCES: dict[str, dict[str, Any]] = {
    "synthetic": {"data.format": "coco", "data.root": "data/synth_coco",
                  "data.train_ann": "annotations/instances_train.json",
                  "data.val_ann": "annotations/instances_val.json",
                  "data.train_images": "images/train", "data.val_images": "images/val",
                  "model.head.num_classes": 8},
    # the proxy task (rtmdet.data.proxy, docs/proxy.md): what the proxy scale trains on
    "proxy": {"data.format": "coco", "data.root": "data/proxy",
              "data.train_ann": "annotations/instances_train.json",
              "data.val_ann": "annotations/instances_val.json",
              "data.train_images": "images/train", "data.val_images": "images/val",
              "model.head.num_classes": 6},
    "coco": {"data.format": "coco", "data.root": "data/coco",
             "data.train_ann": "annotations/instances_train2017.json",
             "data.val_ann": "annotations/instances_val2017.json",
             "data.train_images": "train2017", "data.val_images": "val2017",
             "model.head.num_classes": 80},
}


@dataclass(frozen=True)
class Scale:
    """How big the runs are. ``width_mult`` scales backbone width and neck channels together, and
    ``deepen_mult`` the backbone's deepen factor and the neck's CSP blocks, so relative
    differences between variants (sizes, backbone/neck split, 3-6-6-3 vs 3-9-9-3: the knob a
    variant sets is never scaled, only the preset's factors) survive the shrink. ``single_seed``
    lists the tables that run seed 0 only (their tables say so); ``data_source`` the data the
    scale is designed for (``None``: the pipeline's ``data_source`` setting decides).
    ``curve_interval``/``curve_seeds``: the baseline of every table validates every N epochs for
    these seeds, so its report shows an AP-vs-iteration curve (a reader sees whether training has
    flattened); validation draws no training randomness, so those runs' weights are unchanged."""
    name: str
    num_seeds: int = 1
    width_mult: float = 1.0
    deepen_mult: float = 1.0
    overrides: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    single_seed: tuple[str, ...] = ()
    data_source: str | None = None
    curve_interval: int = 0
    curve_seeds: tuple[int, ...] = ()

    @classmethod
    def from_dict(cls, name: str, d: dict[str, Any]) -> "Scale":
        return cls(name=name, num_seeds=int(d.get("num_seeds", 1)),
                   width_mult=float(d.get("width_mult", 1.0)),
                   deepen_mult=float(d.get("deepen_mult", 1.0)),
                   overrides=dict(d.get("overrides") or {}), description=d.get("description", ""),
                   single_seed=tuple(d.get("single_seed") or ()),
                   data_source=d.get("data_source"),
                   curve_interval=int((d.get("baseline_curve") or {}).get("val_interval", 0)),
                   curve_seeds=tuple((d.get("baseline_curve") or {}).get("seeds") or ()))


PAPER_SCALE = Scale("paper", num_seeds=3)


# ----------------------------------------------------------------------------- resolving
def _scaled_size(cfg: Config, scale: Scale) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if scale.width_mult != 1.0:
        out["model.backbone.widen_factor"] = round(cfg.model.backbone.widen_factor * scale.width_mult, 6)
        out["model.neck.out_channels"] = max(8, int(round(cfg.model.neck.out_channels
                                                          * scale.width_mult)))
    if scale.deepen_mult != 1.0:
        out["model.backbone.deepen_factor"] = round(cfg.model.backbone.deepen_factor
                                                    * scale.deepen_mult, 6)
        out["model.neck.num_csp_blocks"] = max(1, int(round(cfg.model.neck.num_csp_blocks
                                                            * scale.deepen_mult)))
    return out


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
    merged.update(_scaled_size(cfg, scale))
    if variant == exp.baseline and seed in scale.curve_seeds and scale.curve_interval:
        merged["train.val_interval"] = scale.curve_interval
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


def resolve_to_file(spec: dict[str, Any], out: str, log: str) -> None:
    """Validate one run's config from its :func:`run_spec` and write it as YAML (the pipeline's
    ``resolve_config`` rule, run inside the Snakemake process so 139 runs do not pay 139
    interpreter start-ups)."""
    save_config(load_config(spec["base"], spec["overrides"]), out)
    with open(log, "w") as f:
        print(f"wrote {out}", file=f)


def not_run_reason(exp: Experiment, variant: str, scale: str,
                   root: str | Path = ROOT) -> str | None:
    """Why ``variant`` cannot run at ``scale`` (None: it can). The pipeline leaves such a
    variant out and its table row says why, instead of failing the whole table: e.g. the
    ImageNet-pretrained backbone is a file users download themselves, and it only fits the
    paper-scale widths."""
    v = exp.variants[variant]
    if v.scales is not None and scale not in v.scales:
        return f"runs at the {' / '.join(v.scales)} scale only, not {scale}"
    missing = [f for f in v.requires if not (Path(root) / f).exists()]
    if missing:
        return f"needs {missing[0]} (not present)"
    return None


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
    """The seeds a table runs at ``scale``: the scale's number, or one for its single-seed tables
    (model sizes, Ins, DOTA at the proxy scale: each says so in its table)."""
    n = 1 if exp.name in scale.single_seed else scale.num_seeds
    return exp.seeds[:max(1, n)]


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
