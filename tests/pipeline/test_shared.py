"""Trainings shared between tables: only bit-identical trainings are shared, and the copy
carries its own name/tags/folder (rtmdet.pipeline.shared)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from rtmdet.config import load_config, save_config
from rtmdet.pipeline.resolve import Scale, resolve
from rtmdet.pipeline.shared import canonical_runs, copy_training, training_key
from rtmdet.pipeline.spec import list_experiments

ROOT = Path(__file__).resolve().parents[2]


def _proxy_scale() -> Scale:
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    return Scale.from_dict("proxy", cfg["scales"]["proxy"])


def test_the_known_identical_trainings_are_found_and_nothing_else():
    exps = list_experiments(ROOT / "experiments")
    scale = _proxy_scale()
    names = ["kernel_size", "stage_depth", "backbone_neck_ratio", "head_sharing"]
    runs = [(f"{a}/{v}/{s}", resolve(exps[a], v, s, scale, "proxy"))
            for a in names for v in exps[a].variants for s in (0, 1)]
    shared = canonical_runs(runs)
    # 3-6-6-3, 5x5, no channel attention: the same model in three tables
    assert shared["stage_depth/d3663/0"] == "kernel_size/k5/0"
    assert shared["backbone_neck_ratio/l_47/1"] == "kernel_size/k5/1"
    # RTMDet-l defaults (channel attention, SepBN head); seed 0 of head_sharing's baseline logs
    # the AP curve (baseline_curve), so it trains and the stage_depth row copies it
    assert shared["stage_depth/d3663_ca/0"] == "head_sharing/sepbn/0"
    assert shared["head_sharing/sepbn/1"] == "stage_depth/d3663_ca/1"
    assert cfgs_val(runs, "head_sharing/sepbn/0") == 1 and cfgs_val(runs, "head_sharing/sepbn/1") == 0
    assert cfgs_val(runs, "stage_depth/d3663_ca/0") == 0
    assert "kernel_size/k3/0" not in shared and "stage_depth/d3993/0" not in shared
    # never across seeds, never between different configs
    cfgs = dict(runs)
    for dup, src in shared.items():
        assert dup.rsplit("/", 1)[1] == src.rsplit("/", 1)[1]
        assert training_key(cfgs[dup]) == training_key(cfgs[src])


def cfgs_val(runs, folder: str) -> int:
    return dict(runs)[folder].train.val_interval


def test_copy_carries_its_own_config_and_refuses_a_different_training(tmp_path):
    src, dst = tmp_path / "a", tmp_path / "b"
    src.mkdir()
    base = ["data.img_size=64", "seed=1"]
    save_config(load_config("rtmdet-tiny", base + ["name=kernel_size/k5"]), src / "config.yaml")
    torch.save({"w": torch.ones(2)}, src / "final.pt")
    (src / "metrics.csv").write_text("iter,loss\n1,0.5\n")
    save_config(load_config("rtmdet-tiny", base + ["name=stage_depth/d3663"]), tmp_path / "r.yaml")
    copy_training(src, dst, tmp_path / "r.yaml")
    assert load_config(dst / "config.yaml").name == "stage_depth/d3663"
    assert (dst / "metrics.csv").read_text() == (src / "metrics.csv").read_text()
    assert torch.equal(torch.load(dst / "final.pt", weights_only=True)["w"], torch.ones(2))
    assert str(src) in (dst / "shared_from.txt").read_text()

    save_config(load_config("rtmdet-tiny", ["data.img_size=64", "seed=2"]), tmp_path / "o.yaml")
    with pytest.raises(ValueError, match="not the same training"):
        copy_training(src, tmp_path / "c", tmp_path / "o.yaml")
    assert not (tmp_path / "c").exists()
