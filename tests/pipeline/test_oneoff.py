"""One-off variants: `dvc exp run -S oneoff...` edits params.yaml; the Snakefile, DVC and the
report then see one extra variant of one ablation. Tested through DVC's own override code on a
copy of params.yaml (no dvc run), down to the config the run would train."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from rtmdet.pipeline.dvc import OneOff, dvc_doc, load_oneoff, parse_overrides
from rtmdet.pipeline.resolve import resolve, run_spec
from rtmdet.pipeline.spec import ExperimentError, list_experiments

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = list_experiments(ROOT / "experiments")


def _set(tmp_path: Path, *overrides: str) -> Path:
    """params.yaml after `dvc exp run -S <overrides>` (DVC's Hydra override code, unmodified)."""
    from dvc.utils.hydra import apply_overrides
    params = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", params)
    apply_overrides(params, list(overrides))
    return params


def test_default_params_add_nothing():
    one = load_oneoff(ROOT / "params.yaml")
    assert one.ablation == "" and one.apply(EXPERIMENTS) is EXPERIMENTS


def test_dvc_set_params_add_a_variant_that_resolves_to_the_override(tmp_path):
    params = _set(tmp_path, "oneoff.ablation=kernel_size", "oneoff.name=k9",
                  "+oneoff.overrides.model.backbone.kernel_size=9",
                  "+oneoff.overrides.model.neck.kernel_size=9")
    one = load_oneoff(params)
    assert one == OneOff("kernel_size", "k9", "",
                         {"model.backbone.kernel_size": 9, "model.neck.kernel_size": 9})
    exps = one.apply(EXPERIMENTS)
    exp = exps["kernel_size"]
    assert list(exp.variants)[-1] == "k9" and list(EXPERIMENTS["kernel_size"].variants) == \
        ["k3", "k5", "k7"]                                # the files are not touched
    cfg = resolve(exp, "k9", 0)
    assert cfg.model.backbone.kernel_size == 9 and cfg.model.neck.kernel_size == 9
    base, new = run_spec(exp, exp.baseline)["overrides"], run_spec(exp, "k9")["overrides"]
    changed = {k for k in set(base) | set(new) if base.get(k) != new.get(k)}
    assert changed == {"model.backbone.kernel_size", "model.neck.kernel_size", "name", "tags",
                       "work_dir"}
    assert exps["stage_depth"] is EXPERIMENTS["stage_depth"]
    # A params change reaches every ablation table stage, so `dvc exp run` reruns it through
    # Snakemake (timing tables train nothing, so a one-off variant cannot change them).
    from rtmdet.pipeline.report_timing import TIMING_TABLES
    stages = dvc_doc(exps)["stages"]
    assert all("oneoff" in stages[f"table_{n}"]["params"] for n in exps)
    assert all("oneoff" not in stages[f"table_{n}"]["params"] for n in TIMING_TABLES)


def test_list_form_and_base_variant(tmp_path):
    params = _set(tmp_path, "oneoff.ablation=kernel_size", "oneoff.name=k7_sgd",
                  "oneoff.base_variant=k7", "oneoff.set=['train.optimizer=sgd']")
    exp = load_oneoff(params).apply(EXPERIMENTS)["kernel_size"]
    v = exp.variants["k7_sgd"]
    assert v.compare_to == "k7" and v.paper_row is None
    cfg = resolve(exp, "k7_sgd")
    assert (cfg.model.backbone.kernel_size, cfg.train.optimizer) == (7, "sgd")


def test_parse_overrides_values_are_yaml():
    assert parse_overrides(["a.b=3", "a.c=false", "d.e=0.5", "f.g=x=y"]) == \
        {"a.b": 3, "a.c": False, "d.e": 0.5, "f.g": "x=y"}
    assert parse_overrides({"train": {"base_lr": 0.002, "betas": [0.9, 0.99]}}) == \
        {"train.base_lr": 0.002, "train.betas": [0.9, 0.99]}
    with pytest.raises(ExperimentError, match="expected 'dotted.key=value'"):
        parse_overrides(["novalue"])


@pytest.mark.parametrize("one, match", [
    (OneOff("nope", "x"), "unknown ablation 'nope'"),
    (OneOff("kernel_size", "k3"), "already a variant"),
    (OneOff("kernel_size", "k9", "k11"), "base_variant 'k11'"),
    (OneOff("kernel_size", "bad name"), "letters, digits"),
    (OneOff("kernel_size", "k9", "", {"model.backbone.kernel_sise": 9}), "kernel_sise"),
])
def test_bad_oneoff_fails_in_one_line(one, match):
    with pytest.raises(ExperimentError, match=match) as e:
        one.apply(EXPERIMENTS)
    assert "\n" not in str(e.value)


def test_unknown_oneoff_key_is_an_error(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"oneoff": {"ablation": "kernel_size", "varaint": "x"}}))
    with pytest.raises(ExperimentError, match="oneoff.varaint: unknown key"):
        load_oneoff(params)
