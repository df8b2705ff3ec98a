"""The user's path through the CLI on a tiny model: every `rtmdet train` without a named folder
gets its own run folder; validation writes best.pt and val_AP; final.pt is weights-only and
enough for eval/export (config read from the checkpoint); eval's files are named by setting."""
from __future__ import annotations

import csv
import json

import pytest
import torch

from rtmdet.commands.main import main
from rtmdet.data.synthetic import write_synth_coco


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return write_synth_coco(tmp_path_factory.mktemp("synth"), n_train=6, n_val=3, seed=0,
                            size_range=(64, 96), max_objects=4)


def tiny(root, work_dir, epochs=2, val=1):
    return [f"data.root={root}", "data.img_size=64", "data.num_workers=0",
            "data.mosaic_cache_size=4", "data.mixup_cache_size=2", "model.head.num_classes=8",
            "model.backbone.widen_factor=0.125", "train.batch_size=2", f"train.epochs={epochs}",
            "train.max_iters_per_epoch=2", "train.warmup_iters=1", "train.flat_epochs=0",
            "train.stage2_epochs=0", "train.threads=1", f"train.val_interval={val}",
            f"work_dir={work_dir}"]


def test_train_twice_eval_and_export_from_the_checkpoint(synth, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    over = tiny(synth, "runs/tiny")
    assert main(["train", "rtmdet-tiny", *over[:5], "--device", "cpu", *over[5:]]) == 0
    out = capsys.readouterr().out
    run1 = tmp_path / "runs" / "tiny"
    assert "best AP" in out and "final AP" in out and "runs/tiny/final.pt" in out
    assert {"config.yaml", "last.pt", "final.pt", "best.pt", "metrics.csv"} <= {
        p.name for p in run1.iterdir()}
    rows = list(csv.DictReader(open(run1 / "metrics.csv")))
    assert [r["val_AP"] != "" for r in rows] == [False, True, False, True]   # after each epoch
    best = torch.load(run1 / "best.pt", weights_only=True)
    assert set(best) == {"state_dict", "config", "meta"} and best["meta"]["best"]["metric"] == "AP"
    final = torch.load(run1 / "final.pt", weights_only=True)
    assert final["meta"]["classes"][:2] == ["disk", "box"]

    assert main(["train", "rtmdet-tiny", *tiny(synth, "runs/tiny", epochs=1, val=0)]) == 0
    run2 = tmp_path / "runs" / "tiny2"                     # the first run is left alone
    assert (run2 / "final.pt").exists() and "validation" in capsys.readouterr().out
    assert torch.load(run1 / "final.pt", weights_only=True)["meta"]["epoch"] == 2

    # eval with no CONFIG: the checkpoint's config, plus an override anywhere
    assert main(["eval", "--weights", str(run1 / "final.pt"), "--fast", "eval.batch_size=1",
                 "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]" in printed
    assert "per-class bbox AP" in printed and "disk" in printed
    fast = json.loads((run1 / "eval_fast.json").read_text())
    assert fast["setting"] == "ablation" and not (run1 / "eval.json").exists()
