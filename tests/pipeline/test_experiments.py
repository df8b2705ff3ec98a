"""experiments/*.yaml: every variant resolves at every scale, matches its paper row, and the
Snakemake/DVC views are the same list of ablations."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from rtmdet.models.build import build_model
from rtmdet.bench.complexity import count_params
from rtmdet.config import Config
from rtmdet.pipeline.dvc import dvc_doc, params_doc
from rtmdet.pipeline.resolve import (PAPER_SCALE, Scale, paper_only_rows, paper_values, resolve,
                                       seeds_for, validate)
from rtmdet.pipeline.spec import ExperimentError, list_experiments, load_experiment
from rtmdet.pipeline.report_timing import TIMING_TABLES

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = list_experiments(ROOT / "experiments")
SNAKE_CONFIG = yaml.safe_load((ROOT / "config/config.yaml").read_text())
SCALES = [Scale.from_dict(n, d) for n, d in SNAKE_CONFIG["scales"].items()]
# The ablations the issue asks for, by file name.
REQUIRED = {"kernel_size", "stage_depth", "backbone_neck_ratio", "head_sharing",
            "label_assignment", "augmentation", "optimization", "step_by_step", "model_sizes",
            "instance_seg", "dota"}


def test_every_required_ablation_has_a_file():
    assert REQUIRED <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_every_variant_resolves_at_every_scale(name):
    exp = EXPERIMENTS[name]
    configs = validate(exp, SCALES)
    assert set(configs) == set(exp.variants)
    for variant, cfgs in configs.items():
        for cfg, scale in zip(cfgs, SCALES):
            assert isinstance(cfg, Config)
            assert cfg.tags == {"ablation": name, "variant": variant, "scale": scale.name,
                                "test_setting": exp.test_setting, "data": "synthetic"}
            # the variant's own overrides survive every scale unchanged
            flat = cfg.flat()
            for key, value in exp.variants[variant].overrides.items():
                assert flat[key] == value, (variant, scale.name, key)


def test_variants_differ_from_each_other():
    """Two variants of one ablation that resolve to the same model+training config would be the
    same experiment twice (a typo'd override key would be caught by the schema, a missing one here)."""
    for exp in EXPERIMENTS.values():
        seen: dict[str, str] = {}
        for v in exp.variants:
            d = resolve(exp, v).to_dict()
            for k in ("name", "tags", "work_dir"):
                d.pop(k)
            key = yaml.safe_dump(d)
            assert key not in seen, f"{exp.name}: {v} is identical to {seen.get(key)}"
            seen[key] = v


def test_smoke_scale_shrinks_width_but_keeps_relative_sizes():
    smoke = next(s for s in SCALES if s.name == "smoke")
    exp = EXPERIMENTS["model_sizes"]
    widths = [resolve(exp, v, 0, smoke).model.backbone.widen_factor for v in exp.variants]
    paper = [resolve(exp, v).model.backbone.widen_factor for v in exp.variants]
    assert widths == pytest.approx([w * smoke.width_mult for w in paper])
    assert resolve(exp, "s", 0, smoke).data.img_size == 128
    assert seeds_for(exp, smoke) == [0] and seeds_for(exp, PAPER_SCALE) == [0, 1, 2]


def _last_digit(text_value: float) -> float:
    decimals = len(repr(text_value).split(".")[1]) if "." in repr(text_value) else 0
    return 10 ** -decimals + 1e-9


def test_paper_scale_params_match_the_paper_rows():
    """Each variant is the paper's variant: our parameter count at paper scale rounds to the
    paper's cell to within one unit of its last digit (SPEC §1: a variant whose params disagree
    with its row is not that variant). One unit, not half: the paper gives the fully shared head
    the SepBN head's 52.32 M although sharing the BNs saves 4,096 parameters."""
    torch.manual_seed(0)
    checked = 0
    for exp in EXPERIMENTS.values():
        for v, cells in paper_values(exp).items():
            p = cells.get("params_M")
            if not isinstance(p, float):
                continue
            ours = count_params(build_model(resolve(exp, v, 0, PAPER_SCALE, "coco").model))
            ours_m = ours["total"] / 1e6
            if (exp.name, v) == ("model_sizes", "tiny"):
                # the official README truncates 4,896,168 to 4.8 M (SPEC §1 gives the exact count)
                assert ours["total"] == 4_896_168
            else:
                assert abs(ours_m - p) <= _last_digit(p), (exp.name, v, ours_m, p)
            checked += 1
    assert checked >= 20


def test_paper_cells_not_found_stay_not_found():
    aug = paper_values(EXPERIMENTS["augmentation"])
    assert aug["lsj_only"]["AP"] == 42.3 and aug["mix_stage2"]["AP"] == 43.9
    assert aug["rtmdet_default"]["AP"] == "not found"
    assert paper_values(EXPERIMENTS["optimization"])["sgd"]["AP"] == "not found"
    extra = paper_only_rows(EXPERIMENTS["step_by_step"])
    assert [r["AP"] for r in extra] == [40.2, 40.6]          # the YOLOX rows
    assert all(r["reason"] for r in extra)
    assert paper_values(EXPERIMENTS["step_by_step"])["pretrained"]["AP"] == 44.5


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


GOOD = """title: t
base: rtmdet-s
baseline: a
variants:
  a: {}
  b: {overrides: {model.backbone.kernel_size: 7}}
"""


def test_bad_files_fail_with_one_line_naming_the_key(tmp_path):
    exp = load_experiment(_write(tmp_path, GOOD))
    assert resolve(exp, "b").model.backbone.kernel_size == 7
    cases = {
        GOOD.replace("kernel_size: 7", "kernel_sise: 7"): "model.backbone.kernel_sise: unknown key",
        GOOD.replace("kernel_size: 7", "kernel_size: seven"): "model.backbone.kernel_size",
        GOOD.replace("baseline: a", "baseline: c"): "baseline: 'c' is not one of the variants",
        GOOD.replace("base: rtmdet-s", "base: rtmdet-q"): "base: unknown preset",
        GOOD + "colour: red\n": "colour: unknown key",
    }
    for text, expected in cases.items():
        with pytest.raises(ExperimentError) as e:
            validate(load_experiment(_write(tmp_path, text)))
        assert expected in str(e.value) and "\n" not in str(e.value)


def test_a_scale_may_not_change_what_a_variant_ablates(tmp_path):
    exp = load_experiment(_write(tmp_path, GOOD))
    bad = Scale("tiny", overrides={"model.backbone.kernel_size": 3})
    with pytest.raises(ExperimentError, match="variants.b: model.backbone.kernel_size"):
        resolve(exp, "b", 0, bad)
    assert resolve(exp, "a", 0, bad).model.backbone.kernel_size == 3  # not ablated by a


def test_unknown_paper_row_is_an_error(tmp_path):
    text = GOOD + ("paper: {csv: ablation_a_kernel_size.csv, match: kernel, columns: {AP: AP}}\n")
    exp = load_experiment(_write(tmp_path, text.replace("a: {}", "a: {paper_row: 9x9}")))
    with pytest.raises(ExperimentError, match="matches 0 rows"):
        paper_values(exp)


def test_params_and_dvc_files_are_generated_from_experiments():
    """One source of truth: params.yaml and dvc.yaml are exactly what experiments/ generates."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert params == params_doc(EXPERIMENTS, params["profile"])
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    assert dvc == dvc_doc(EXPERIMENTS)
    tables = {s.removeprefix("table_") for s in dvc["stages"] if s.startswith("table_")}
    assert set(params["ablations"]) == set(EXPERIMENTS)
    assert tables == set(EXPERIMENTS) | set(TIMING_TABLES)     # + timing tables (no params)


def test_rerun_trigger_is_what_the_files_say_not_the_schema_defaults():
    """Snakemake reruns a training when run_spec changes; it must hold only the experiment's,
    variant's, data source's and scale's keys, so a new config field retrains nothing."""
    from rtmdet.pipeline.resolve import DATA_SOURCES, run_spec
    smoke = next(s for s in SCALES if s.name == "smoke")
    exp = EXPERIMENTS["kernel_size"]
    spec = run_spec(exp, "k3", 0, smoke)
    allowed = (set(exp.overrides) | set(exp.variants["k3"].overrides) | set(DATA_SOURCES["synthetic"])
               | set(smoke.overrides) | {"model.backbone.widen_factor", "model.neck.out_channels",
                                         "seed", "name", "tags", "work_dir"})
    assert spec["base"] == "rtmdet-l" and set(spec["overrides"]) <= allowed
    assert spec["overrides"]["model.backbone.widen_factor"] == 0.25
    assert spec["overrides"]["model.neck.out_channels"] == 64


def test_a_variant_that_needs_a_file_or_a_scale_says_why_it_does_not_run(tmp_path):
    """The ImageNet-pretrained rows: run at the paper scale when the checkpoint is present."""
    from rtmdet.pipeline.resolve import not_run_reason
    exp = EXPERIMENTS["step_by_step"]
    need = exp.variants["pretrained"].requires[0]
    assert resolve(exp, "pretrained").train.init_from == need
    assert not_run_reason(exp, "pretrained", "proxy", tmp_path) == (
        "runs at the paper scale only, not proxy")
    assert not_run_reason(exp, "pretrained", "paper", tmp_path) == f"needs {need} (not present)"
    (tmp_path / need).parent.mkdir(parents=True)
    (tmp_path / need).write_bytes(b"")
    assert not_run_reason(exp, "pretrained", "paper", tmp_path) is None
    assert not_run_reason(exp, "cached_mix", "proxy", tmp_path) is None
    for bad, msg in (("requires: data/x.pth", "variants.b.requires: must be a list"),
                     ("scales: [1]", "variants.b.scales: must be a list")):
        text = GOOD.replace("b: {overrides:", f"b: {{{bad}, overrides:")
        with pytest.raises(ExperimentError, match=msg):
            load_experiment(_write(tmp_path, text))
