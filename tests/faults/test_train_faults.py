"""Training faults: divergence (stop and skip_step), kills at random points then the pipeline's
--auto-resume, refused overwrites, orphaned temp files, parallel MLflow writers on a fresh store."""
from __future__ import annotations

import json
import os
import random
import socket
from pathlib import Path

import pytest
import torch

from rtmdet.commands.main import main
from rtmdet.config import load_config
from rtmdet.engine.trainer import StopTraining, Trainer
from rtmdet.utils.errors import DivergenceError
from rtmdet.utils.io import atomic_torch_save
from tests.helpers.tracking_checks import finish, run_of, start, steps

from .conftest import one_error_line


def _cfg(tiny_args, work: Path, *extra: str):
    return load_config(tiny_args[0], [*tiny_args[1:], f"work_dir={work}", *extra])


def _weights(path: Path) -> dict[str, torch.Tensor]:
    ckpt = torch.load(path, weights_only=True)
    return {**{f"m.{k}": v for k, v in ckpt["state_dict"].items()},
            **{f"e.{k}": v for k, v in ckpt["ema_state_dict"].items()}}


@pytest.fixture(scope="module")
def uninterrupted(tiny_args, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("full") / "run"
    Trainer(_cfg(tiny_args, work, "train.checkpoint_iters=1")).fit()
    return work / "last.pt"            # the full state (final.pt holds the EMA weights only)


# ----------------------------------------------------------------------------- divergence
def test_nan_loss_stops_with_exit_3_and_failed_run(tiny_args, tmp_path, capsys, monkeypatch):
    """train.base_lr=1e6 (issue #17: NaN from iteration 7, exit 0, a NaN final.pt)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    work = tmp_path / "run"
    rc = main(["train", *tiny_args, "train.base_lr=1000000.0", "train.epochs=3",
               "train.max_iters_per_epoch=3", "--work-dir", str(work), "--mlflow"])
    line = one_error_line(capsys.readouterr().err)
    assert rc == 3
    assert "training diverged at iteration 7: loss is nan" in line, line
    assert f"last good checkpoint: {work / 'last.pt'}" in line
    assert not (work / "final.pt").exists()
    for t in _weights(work / "last.pt").values():
        assert torch.isfinite(t).all()
    from rtmdet.engine import tracking_store
    assert tracking_store.client().get_run(run_of(work)).info.status == "FAILED"
    # eval refuses non-finite weights (a checkpoint of the diverged state, written by hand)
    ckpt = torch.load(work / "last.pt", weights_only=True)
    ckpt["ema_state_dict"] = {k: v * float("nan") if v.is_floating_point() else v
                              for k, v in ckpt["ema_state_dict"].items()}
    torch.save(ckpt, tmp_path / "nan.pt")
    assert main(["eval", *tiny_args, "--weights", str(tmp_path / "nan.pt")]) == 2
    assert "hold NaN/inf" in one_error_line(capsys.readouterr().err)


def _poison(trainer: Trainer, bad_iters: set[int]) -> None:
    """Fault injection: the loss of the given (1-based) iterations becomes NaN."""
    criterion = trainer.criterion

    def poisoned(*args):
        losses = criterion(*args)
        if trainer.global_iter + 1 in bad_iters:
            losses = {**losses, "loss": losses["loss"] * float("nan")}
        return losses
    trainer.criterion = poisoned


def test_skip_step_skips_and_finishes(tiny_args, tmp_path):
    tr = Trainer(_cfg(tiny_args, tmp_path / "run", "train.nan_policy=skip_step"))
    _poison(tr, {2})
    final = tr.fit()
    assert tr.guard.skipped == 1
    assert all(torch.isfinite(t).all() for t in _weights(final.parent / "last.pt").values())


def test_skip_step_is_bounded(tiny_args, tmp_path):
    tr = Trainer(_cfg(tiny_args, tmp_path / "run", "train.nan_policy=skip_step",
                      "train.max_skipped_steps=1"))
    _poison(tr, {2, 3})
    with pytest.raises(DivergenceError, match="iteration 3: loss is nan after 1 skipped steps"):
        tr.fit()
    assert not (tmp_path / "run" / "final.pt").exists()


# ----------------------------------------------------------------------------- kills + resume
KILL_AT = random.Random(17).sample(range(1, 4), 2)       # global iterations of the "kill"


@pytest.mark.parametrize("kill_at", KILL_AT)
def test_kill_then_auto_resume_is_bit_identical(tiny_args, tmp_path, uninterrupted, kill_at):
    """What the pipeline's train rule does after a killed job: --auto-resume from last.pt."""
    work = tmp_path / "run"
    with pytest.raises(StopTraining):
        Trainer(_cfg(tiny_args, work, "train.checkpoint_iters=1"), stop_at_iter=kill_at).fit()
    assert not (work / "final.pt").exists()
    assert main(["train", *tiny_args, "train.checkpoint_iters=1", "--work-dir", str(work),
                 "--auto-resume"]) == 0
    a, b = _weights(uninterrupted), _weights(work / "last.pt")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert torch.load(work / "final.pt", weights_only=True)["meta"]["global_iter"] == 4


# ----------------------------------------------------------------------------- overwrites
def test_work_dir_with_checkpoint_is_refused(tiny_args, tmp_path, capsys):
    work = tmp_path / "run"
    work.mkdir()
    atomic_torch_save(work / "last.pt", {"global_iter": 16})
    before = (work / "last.pt").read_bytes()
    assert main(["train", *tiny_args, "--work-dir", str(work)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "already holds last.pt" in line and "--exist-ok" in line and "--resume" in line
    assert (work / "last.pt").read_bytes() == before
    assert main(["train", *tiny_args, "--work-dir", str(work), "--resume", "--exist-ok"]) == 2
    assert "exclude each other" in one_error_line(capsys.readouterr().err)
    assert main(["train", *tiny_args, "train.epochs=1", "train.stage2_epochs=0",
                 "--work-dir", str(work), "--exist-ok"]) == 0
    assert torch.load(work / "final.pt", weights_only=True)["meta"]["global_iter"] == 2


def test_predict_never_writes_into_its_source(tiny_ckpt, tmp_path, capsys):
    import cv2
    import numpy as np
    src = tmp_path / "imgs"
    (src / "sub").mkdir(parents=True)
    img = np.full((64, 80, 3), 90, np.uint8)
    for name in ("x.bmp", "x.png", "sub/x.png"):
        cv2.imwrite(str(src / name), img)
    before = {p: p.read_bytes() for p in src.rglob("*")  if p.is_file()}
    for out in (src, src / "sub"):
        assert main(["predict", "--weights", str(tiny_ckpt), "--source", str(src),
                     "--out", str(out)]) == 2
        assert "inside --source" in one_error_line(capsys.readouterr().err)
    single = src / "x.png"
    assert main(["predict", "--weights", str(tiny_ckpt), "--source", str(single),
                 "--out", str(src)]) == 2
    assert "would overwrite the input" in one_error_line(capsys.readouterr().err)
    assert {p: p.read_bytes() for p in src.rglob("*") if p.is_file()} == before
    out = tmp_path / "out"
    assert main(["predict", "--weights", str(tiny_ckpt), "--source", str(src),
                 "--out", str(out)]) == 0
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.png")) == \
        ["sub/x.png", "x.bmp.png", "x.png"]


# ----------------------------------------------------------------------------- temp files
def test_orphaned_temp_files_are_removed_by_the_next_write(tmp_path):
    target = tmp_path / "last.pt"
    host = socket.gethostname()
    dead = tmp_path / f".last.pt.{host}-999999999.abc.tmp"       # writer killed mid-write
    old = tmp_path / ".last.pt.k3j2h1.tmp"                       # older naming, a day old
    live = tmp_path / f".last.pt.{host}-{os.getpid()}.def.tmp"   # a write still under way
    for p in (dead, old, live):
        p.write_bytes(b"x" * 1000)
    os.utime(old, (0, 0))
    atomic_torch_save(target, {"a": torch.zeros(2)})
    assert not dead.exists() and not old.exists() and live.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, "last.pt"])


# ----------------------------------------------------------------------------- MLflow
def test_parallel_writers_on_fresh_store(tmp_path, monkeypatch):
    """3 jobs at once on a store nobody created (was: alembic 'duplicate column' crashes)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    dirs = [tmp_path / f"w{i}" for i in range(3)]
    finish([start("train", str(d), "--ablation", "par", "--variant", d.name, "--steps", "4")
            for d in dirs])
    from rtmdet.engine import tracking_store
    c = tracking_store.client()
    for d in dirs:
        run = c.get_run(run_of(d))
        assert run.info.status == "FINISHED" and steps(c, run.info.run_id) == [1, 2, 3, 4]
    assert json.loads((dirs[0] / "mlflow_run.json").read_text())["run"] == run_of(dirs[0])
