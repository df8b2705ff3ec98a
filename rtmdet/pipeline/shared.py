"""Trainings that several tables share: train once, copy to every run folder that asks for it.

At the proxy scale 23 of the 139 runs are bit-for-bit the same training as a run of another
table (kernel_size/k5 = stage_depth/d3663 = backbone_neck_ratio/l_47, every table's RTMDet-s
default, ...): same preset, same overrides once resolved, same seed, so the same weights.
Training them once saves a fifth of `make tables`. The *canonical* run is the first one in
experiment order; the others get a copy of its outputs with their own config.yaml (their name,
tags and folder) and a ``shared_from.txt`` saying where the weights came from, so a table still
reads every row from its own folder and a reader can see the sharing. Which keys define "the same
training" is :func:`training_key`: everything in the resolved config except what only names or
files the run.
"""
from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

from rtmdet.config import Config, load_config, save_config
from rtmdet.utils.io import atomic_write_text

# Keys that name a run or say where its files go, and periodic validation (it restores the RNG it
# uses, rtmdet.engine.validation): they do not change what is trained.
NAMING_KEYS = ("name", "tags", "work_dir")
NOT_TRAINING = (("train", "val_interval"),)
COPIED = ("final.pt", "metrics.csv", "loss_curve.png")


def training_key(cfg: Config) -> str:
    """Canonical JSON of everything that decides the weights a training produces."""
    d = cfg.model_dump(mode="json")
    for k in NAMING_KEYS:
        d.pop(k, None)
    for section, k in NOT_TRAINING:
        d.get(section, {}).pop(k, None)
    return json.dumps(d, sort_keys=True)


def canonical_runs(runs: Iterable[tuple[str, Config]]) -> dict[str, str]:
    """``{run folder: canonical run folder}`` for every run that repeats an earlier one
    (``runs`` in the order that decides which is canonical, except that a run with periodic
    validation goes first: its copies then carry the AP curve too); unique runs are absent."""
    first: dict[str, str] = {}
    out: dict[str, str] = {}
    for folder, cfg in sorted(runs, key=lambda r: r[1].train.val_interval == 0):
        key = training_key(cfg)
        if key in first:
            out[folder] = first[key]
        else:
            first[key] = folder
    return out


def copy_training(src: str | Path, dst: str | Path, resolved: str | Path) -> None:
    """Give run folder ``dst`` the outputs of the identical training in ``src``; its config.yaml
    is its own resolved config (its name, tags and folder). Refuses if the two configs would
    train different weights: the sharing must never change a result."""
    src, dst = Path(src), Path(dst)
    own = load_config(resolved)
    theirs = load_config(src / "config.yaml")
    if training_key(own) != training_key(theirs):
        raise ValueError(f"{dst}: not the same training as {src}; refusing to share its weights")
    dst.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        if (src / name).exists():
            tmp = dst / f".{name}.copying"
            shutil.copyfile(src / name, tmp)
            tmp.replace(dst / name)
    save_config(own, dst / "config.yaml")
    atomic_write_text(dst / "shared_from.txt",
                      f"{src}\nThe same training (same resolved config and seed) as {src}; its "
                      f"outputs were copied here instead of training again.\n")


def main(argv: list[str] | None = None) -> int:
    """``python -m rtmdet.pipeline.shared SRC DST RESOLVED`` (the pipeline's train rule)."""
    src, dst, resolved = (argv if argv is not None else sys.argv[1:])
    copy_training(src, dst, resolved)
    print(f"{dst}: shared the training of {src}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
