"""The DVC side of the experiment list: ``params.yaml`` and ``dvc.yaml``, generated from
``experiments/*.yaml``, and the one-off variant that ``dvc exp run -S oneoff...`` adds back.

Snakemake (wildcards), DVC and ``rtmdet report`` all read the same experiment files, so there is
one list of ablations; ``tests/pipeline/test_experiments.py`` fails when the generated files drift. The
one-off lives here because it is params.yaml's own section: DVC writes it, Snakemake and the
report read it back through :func:`load_oneoff`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from rtmdet.config.schema import flatten_dict
from rtmdet.utils.yaml_io import read_yaml_mapping

from .report_timing import TIMING_TABLES
from .resolve import model_type, resolve
from .spec import Experiment, ExperimentError, Variant, reject_unknown


# ----------------------------------------------------------------------------- one-off variant
def parse_overrides(raw: Any, where: str = "oneoff.overrides") -> dict[str, Any]:
    """Dotted overrides from what ``dvc exp run -S`` can write: a nested mapping
    (``-S '+oneoff.overrides.train.base_lr=0.002'`` nests on the dots) or a list of
    ``"key=value"`` strings (``-S "oneoff.set=['train.base_lr=0.002']"``) (values parsed as YAML, so ``7`` is an int and ``false`` a bool)."""
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return flatten_dict(raw)
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
    raw = read_yaml_mapping(path, ExperimentError) if path.exists() else {}
    o = raw.get("oneoff") or {}
    if not isinstance(o, dict):
        raise ExperimentError(f"{path}: oneoff: must be a mapping")
    reject_unknown(path, "oneoff.", o, {"ablation", "name", "base_variant", "overrides", "set"})
    overrides = {**parse_overrides(o.get("overrides")),
                 **parse_overrides(o.get("set"), "oneoff.set")}
    return OneOff(str(o.get("ablation") or ""), str(o.get("name") or "oneoff"),
                  str(o.get("base_variant") or ""), overrides)


# ----------------------------------------------------------------------------- DVC view
PARAMS_HEADER = """\
# DVC parameters, generated from experiments/*.yaml by `python -m rtmdet.pipeline params`
# (tests/pipeline/test_experiments.py fails if it drifts). `profile` picks workflow/profiles/<profile>:
#   dvc exp run -S profile=paper
# `oneoff` adds one extra variant (base variant + dotted overrides) to one ablation:
#   dvc exp run -S oneoff.ablation=kernel_size -S oneoff.name=k9 \\
#       -S '+oneoff.overrides.model.backbone.kernel_size=9' -S '+oneoff.overrides.model.neck.kernel_size=9'
#   (or -S "oneoff.set=['model.backbone.kernel_size=9','model.neck.kernel_size=9']")
"""
PLOT_AP = "workflow/dvc_plots/variants_ci.json"        # vega-lite templates (x categorical)
PLOT_DELTA = "workflow/dvc_plots/delta_ci.json"
DVC_HEADER = """\
# Generated from experiments/*.yaml by `python -m rtmdet.pipeline dvc` (checked by
# tests/pipeline/test_experiments.py): one stage per ablation table (and per timing table, e.g. the
# cache loading time), each calling its Snakemake target.
"""


def params_doc(experiments: dict[str, Experiment], profile: str = "proxy") -> dict[str, Any]:
    """params.yaml: the profile DVC runs Snakemake with, and the ablations (one stage each)."""
    return {"profile": profile,
            # One-off variant (empty ablation: none); see OneOff and README "Pipeline".
            "oneoff": {"ablation": "", "name": "oneoff", "base_variant": "", "overrides": {},
                       "set": []},
            "ablations": {name: {"file": f"experiments/{name}.yaml", "variants": list(exp.variants)}
                          for name, exp in experiments.items()}}


def dvc_doc(experiments: dict[str, Experiment]) -> dict[str, Any]:
    """dvc.yaml: data, one stage per ablation table (its command is the table's Snakemake target,
    so Snakemake stays the only scheduler), one per timing table and the index.

    The rerun policy is Snakemake's, and DVC follows it (docs/pipeline.md): a stage depends on
    what Snakemake's triggers see - the experiment file and config/config.yaml (params: base
    preset, overrides, scale), the data manifest (mtime) and workflow/ (the rules' code) - and
    never on rtmdet/, so a code edit makes neither tool rerun anything. A stage that does rerun
    only asks Snakemake, which recomputes what its own triggers say is stale.
    Reports are ``cache: false`` outs: versioned in git (readable on the forge), hashed by DVC.
    Metrics are the flat numeric ``reports/metrics/<table>.json`` (``dvc metrics show`` prints
    ``kernel_size.k5.AP_mean``); plots are the table CSVs drawn over variants (x categorical) by
    the templates in ``workflow/dvc_plots/`` (AP with its interval per stage, the paired Δ in
    :func:`dvc_plots`). Params are only ``profile`` and the one-off: ``dvc exp show`` gets a
    handful of params columns, the experiment files themselves are file deps."""
    smk = "snakemake --profile workflow/profiles/${profile}"
    code = ["workflow", "config/config.yaml"]      # workflow/ holds the Snakefile and rules
    # The data manifests only: the data folders are large, generated, and not needed by DVC
    # (persist: DVC must not delete them before asking Snakemake, or the fresh mtimes would
    # make Snakemake retrain every run).
    stages: dict[str, Any] = {"prepare_coco": {
        "cmd": f"{smk} data/prepared/coco.json",
        "deps": code,
        "params": ["profile"],
        "outs": [{"data/prepared/coco.json": {"persist": True, "cache": False}}]}}
    rotated = {n for n, e in experiments.items() if model_type(e, e.baseline) == "rotated"}
    if rotated:     # RTMDet-R tables train on DOTA patches (data/dota when present, else synthetic)
        stages["prepare_dota"] = {
            "cmd": f"{smk} dota_patches",
            "deps": code,
            "params": ["profile"],
            "outs": [{"data/dota_split": {"persist": True, "cache": False}}]}
    for name in experiments:
        data = "data/dota_split" if name in rotated else "data/prepared/coco.json"
        figs = [f"reports/figures/{name}{s}.png"
                for s in ("", "_loss", "_pr", "_forest", "_ap_curve")]
        stages[f"table_{name}"] = {
            "cmd": f"{smk} table_{name}",
            "deps": [f"experiments/{name}.yaml", *code, data],
            "params": ["profile", "oneoff"],
            "outs": [{o: {"cache": False}} for o in (f"reports/tables/{name}.md",
                                                     f"reports/tables/{name}.json", *figs)],
            "metrics": [{f"reports/metrics/{name}.json": {"cache": False}}],
            "plots": [{f"reports/tables/{name}.csv": {
                "cache": False, "x": "variant", "y": "ours_AP_mean", "template": PLOT_AP,
                "title": f"{name}: AP per variant (mean, 95 % CI)"}}]}
    for name, paper_csv in TIMING_TABLES.items():   # timings (rtmdet bench data), no training
        stages[f"table_{name}"] = {
            "cmd": f"{smk} table_{name}",
            "deps": [*code, f"paper/{paper_csv}"],
            "params": ["profile"],
            "outs": [{o: {"cache": False}} for o in (f"reports/tables/{name}.md",
                                                     f"reports/tables/{name}.csv")],
            "metrics": [{f"reports/tables/{name}.json": {"cache": False}}]}
    stages["index"] = {
        "cmd": f"{smk} tables_index",
        "deps": [*code, *[f"reports/tables/{n}.json" for n in [*experiments, *TIMING_TABLES]]],
        "params": ["profile"],
        "outs": [{o: {"cache": False}}
                 for o in ("reports/README.md", "reports/figures/speed_accuracy.png")],
        "metrics": [{"reports/metrics/overall.json": {"cache": False}}]}
    return {"stages": stages, "plots": dvc_plots(experiments)}


def dvc_plots(experiments: dict[str, Experiment]) -> list[dict[str, Any]]:
    """Top-level plots: each table's paired Δ per variant with its interval and the paper's Δ
    (the stage-level plot of the same CSV draws the AP)."""
    return [{f"{name}_delta": {"template": PLOT_DELTA, "x": "variant",
                               "y": {f"reports/tables/{name}.csv": "ours_delta"},
                               "title": f"{name}: paired delta vs reference (95 % CI), "
                                        f"paper delta red"}}
            for name in experiments]


def params_yaml(experiments: dict[str, Experiment]) -> str:
    """The text of params.yaml, byte for byte what is committed (header comments included)."""
    return PARAMS_HEADER + yaml.safe_dump(params_doc(experiments), sort_keys=False)


def dvc_yaml(experiments: dict[str, Experiment]) -> str:
    """The text of dvc.yaml, byte for byte what is committed (header comments included)."""
    return DVC_HEADER + yaml.safe_dump(dvc_doc(experiments), sort_keys=False)
