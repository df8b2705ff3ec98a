"""End-to-end training on the synthetic set: resume is exact, DDP runs, eval reads the result."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rtmdet.config import load_config
from rtmdet.data.synthetic import write_synth_coco
from rtmdet.engine.distributed import ShardedEpochSampler
from rtmdet.engine.trainer import StopTraining, Trainer

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return write_synth_coco(tmp_path_factory.mktemp("synth"), n_train=12, n_val=4, seed=0,
                            size_range=(96, 160), max_objects=6)


def tiny_cfg(root: Path, work_dir: Path, **extra):
    overrides = {
        "data.root": str(root), "data.img_size": 128, "data.num_workers": 0,
        "data.mosaic_cache_size": 6, "data.mixup_cache_size": 4,
        "model.head.num_classes": 8, "train.batch_size": 2, "train.epochs": 3,
        "train.max_iters_per_epoch": 3, "train.warmup_iters": 2, "train.flat_epochs": 1,
        "train.stage2_epochs": 1, "train.checkpoint_interval": 1, "train.device": "cpu",
        "work_dir": str(work_dir), "seed": 3, **extra}
    return load_config("rtmdet-tiny", overrides)


def tensors_of(ckpt: dict) -> dict[str, torch.Tensor]:
    """Every tensor that determines the continuation of training, flattened."""
    out = {}
    def walk(prefix, obj):
        if isinstance(obj, torch.Tensor):
            out[prefix] = obj
        elif isinstance(obj, dict):
            for k, v in obj.items():
                walk(f"{prefix}.{k}", v)
        elif isinstance(obj, (list, tuple)):
            for i, v in enumerate(obj):
                walk(f"{prefix}.{i}", v)
    for key in ("state_dict", "ema_state_dict", "optimizer", "dataset"):
        walk(key, ckpt[key])
    return out


def test_resume_mid_epoch_is_bit_identical(synth, tmp_path):
    full = Trainer(tiny_cfg(synth, tmp_path / "full"))
    full.fit()
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)

    cfg = tiny_cfg(synth, tmp_path / "killed", **{"train.checkpoint_iters": 2})
    with pytest.raises(StopTraining):
        Trainer(cfg, stop_at_iter=4).fit()          # dies in epoch 2 (stage 1, caches filled)
    partial = torch.load(tmp_path / "killed" / "last.pt", weights_only=True)
    assert (partial["epoch"], partial["iter_in_epoch"]) == (1, 1)
    assert len(partial["dataset"]["mosaic_cache"]) > 0
    Trainer(cfg, resume=True).fit()
    b = torch.load(tmp_path / "killed" / "last.pt", weights_only=True)

    ta, tb = tensors_of(a), tensors_of(b)
    assert ta.keys() == tb.keys() and len(ta) > 100
    for k in ta:
        assert torch.equal(ta[k], tb[k]), k
    assert [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]]
    assert a["stage"] == b["stage"] == 2 and a["global_iter"] == 9
    for h in a["history"]:
        assert torch.isfinite(torch.tensor(h["loss"]))
    final = torch.load(tmp_path / "full" / "final.pt", weights_only=True)
    assert set(final) == {"state_dict", "config", "meta"}         # weights only: no optimiser
    assert final["meta"]["weights"] == "ema" and final["meta"]["classes"]
    assert all(torch.equal(v, a["ema_state_dict"][k]) for k, v in final["state_dict"].items())
    assert (tmp_path / "full" / "final.pt").stat().st_size < 0.5 * (tmp_path / "full" / "last.pt").stat().st_size
    assert (tmp_path / "full" / "loss_curve.png").stat().st_size > 0
    assert (tmp_path / "full" / "metrics.csv").read_text().count("\n") == 10


def test_resume_refuses_a_different_config(synth, tmp_path):
    Trainer(tiny_cfg(synth, tmp_path / "r", **{"train.epochs": 1, "train.stage2_epochs": 0})).fit()
    other = tiny_cfg(synth, tmp_path / "r", **{"train.epochs": 1, "train.stage2_epochs": 0,
                                               "model.backbone.kernel_size": 3})
    with pytest.raises(ValueError, match="different config"):
        Trainer(other, resume=True)


def test_sharded_sampler_partitions_each_epoch():
    shards = [list(ShardedEpochSampler(10, seed=1, rank=r, world=3)) for r in range(3)]
    assert all(len(s) == 4 for s in shards)                   # padded to equal length
    assert set(sum(shards, [])) == set(range(10))
    s = ShardedEpochSampler(10, seed=1, rank=1, world=3)
    s.set_epoch(0, start=2)
    assert list(s) == shards[1][2:]
    s.set_epoch(1)
    assert list(s) != shards[1]                                # reshuffled per epoch


def test_ddp_two_processes_gloo(synth, tmp_path):
    cfg_path = tmp_path / "ddp.yaml"
    from rtmdet.config import save_config
    save_config(tiny_cfg(synth, tmp_path / "ddp", **{"train.epochs": 1, "train.stage2_epochs": 0,
                                                     "train.batch_size": 1}), cfg_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "rtmdet", "train", str(cfg_path)],
        capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = torch.load(tmp_path / "ddp" / "last.pt", weights_only=True)
    assert ckpt["meta"]["world_size"] == 2
    assert ckpt["global_iter"] == 3
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in ckpt["history"])


def test_init_from_copies_matching_tensors(synth, tmp_path):
    import rtmdet
    src_cfg = load_config("rtmdet-tiny")                      # 80 classes: classifier differs
    src = rtmdet.build_model(src_cfg)
    path = rtmdet.save_weights(tmp_path / "coco.pt", src, src_cfg.to_dict())
    trainer = Trainer(tiny_cfg(synth, tmp_path / "init", **{"train.init_from": str(path)}))
    ours, theirs = trainer.model.state_dict(), src.state_dict()
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs if k.startswith(("backbone.", "neck.")))
    assert ours["head.rtm_cls.0.weight"].shape[0] == 8          # fresh 8-class classifier
    assert torch.equal(trainer.ema.module.state_dict()["backbone.stem.0.conv.weight"],
                       theirs["backbone.stem.0.conv.weight"])  # EMA starts from the loaded weights
