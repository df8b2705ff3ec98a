"""Fixtures of the fault-injection suite: a tiny synthetic COCO set, a tiny model's overrides
and its checkpoint, so each case costs well under a second to a few seconds."""
from __future__ import annotations

from pathlib import Path

import pytest

from rtmdet.config import load_config
from rtmdet.data.synthetic import write_synth_coco
from rtmdet.models.build import build_model
from rtmdet.models.weights import save_weights

# rtmdet-tiny at 1/8 width, 64 px, 2 iterations per epoch: a training is a few seconds on 2 cores.
TINY = ["data.img_size=64", "data.num_workers=0", "data.mosaic_cache_size=4",
        "data.mixup_cache_size=2", "model.head.num_classes=8", "model.backbone.widen_factor=0.125",
        "train.batch_size=2", "train.epochs=2", "train.max_iters_per_epoch=2",
        "train.warmup_iters=1", "train.flat_epochs=1", "train.stage2_epochs=1",
        "train.checkpoint_interval=1", "train.log_interval=1", "train.threads=1",
        "train.device=cpu", "seed=1"]


@pytest.fixture(scope="session")
def synth(tmp_path_factory) -> Path:
    return write_synth_coco(tmp_path_factory.mktemp("faults_synth"), n_train=6, n_val=2, seed=0,
                            size_range=(64, 96), max_objects=4)


@pytest.fixture(scope="session")
def tiny_args(synth) -> list[str]:
    """``rtmdet train rtmdet-tiny`` arguments of the tiny model on ``synth``."""
    return ["rtmdet-tiny", f"data.root={synth}", *TINY]


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory, synth) -> Path:
    """An (untrained) checkpoint of the tiny model, as ``rtmdet eval/predict`` read them."""
    cfg = load_config("rtmdet-tiny", [f"data.root={synth}", *TINY])
    path = tmp_path_factory.mktemp("faults_ckpt") / "tiny.pt"
    return save_weights(path, build_model(cfg), cfg.to_dict())


def one_error_line(err: str) -> str:
    """The CLI's stderr for a user mistake: exactly one ``rtmdet: error:`` line, no traceback."""
    lines = [ln for ln in err.splitlines() if ln.startswith("rtmdet: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    return lines[0]
