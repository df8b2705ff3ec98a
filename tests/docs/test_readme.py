"""The README's Quick start runs as written on a fresh checkout: its first shell block is
executed command by command in a scratch folder holding only the repository's recipes, with the
`rtmdet` of this checkout. What cannot run offline or in a test's time is named here, never
skipped silently: `make setup` (creates the venv; the test already runs in one) is skipped, and
the learning check gets tiny-settings arguments appended (the README's own command, shorter).
The official-weights block needs a download; its `convert` command is checked for its syntax
against the CLI parser only."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SKIPPED = {"make setup && source .venv/bin/activate": "creates the venv the test runs in"}
# appended to a README command (by its first two words) to fit a test's time on 2 cores
TINY = {
    "rtmdet data": "--train 4 --val 2 --min-size 64 --max-size 96 --max-objects 4",
    "rtmdet train": "data.img_size=64 data.num_workers=0 data.mosaic_cache_size=4 "
                    "data.mixup_cache_size=2 model.backbone.widen_factor=0.125 train.batch_size=2 "
                    "train.epochs=1 train.max_iters_per_epoch=2 train.warmup_iters=1 "
                    "train.flat_epochs=0 train.stage2_epochs=0 train.val_interval=1",
    "rtmdet eval": "--max-images 2",
    "rtmdet predict": "--size 64",
    "rtmdet info": "--size 64",
}


def shell_blocks(section: str) -> list[list[str]]:
    """The ```bash blocks of a README section, as lists of commands (comments stripped)."""
    text = (REPO / "README.md").read_text()
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", body, flags=re.S)
    return [[line.split("  #", 1)[0].strip() for line in b.splitlines()
             if line.strip() and not line.lstrip().startswith("#")] for b in blocks]


def _rtmdet_shim(folder: Path) -> Path:
    """An `rtmdet` executable running this checkout's CLI with the test's interpreter."""
    shim = folder / "bin" / "rtmdet"
    shim.parent.mkdir()
    shim.write_text(f"#!/bin/sh\nPYTHONPATH={shlex.quote(str(REPO))} exec "
                    f"{shlex.quote(sys.executable)} -m rtmdet \"$@\"\n")
    shim.chmod(0o755)
    return shim.parent


def test_quick_start_runs_in_order(tmp_path):
    quick, weights = shell_blocks("Quick start")[:2]
    work = tmp_path / "clone"
    work.mkdir()
    (work / "recipes").symlink_to(REPO / "recipes")
    env = {**os.environ, "PATH": f"{_rtmdet_shim(tmp_path)}:{os.environ['PATH']}",
           "OMP_NUM_THREADS": "1", "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    ran = []
    for cmd in quick:
        if cmd in SKIPPED:
            continue
        extra = TINY.get(" ".join(cmd.split()[:2]), "")
        proc = subprocess.run(f"{cmd} {extra}", shell=True, cwd=work, env=env, text=True,
                              capture_output=True, timeout=300)
        assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        ran.append((cmd, proc.stdout))
    outputs = dict(ran)
    assert any(c.startswith("rtmdet train") for c in outputs)    # the block was really run
    assert (work / "runs/learning_check/final.pt").exists()
    assert (work / "runs/learning_check/eval.json").exists()
    assert (work / "preds/detections.json").exists()
    assert "rtmdet 0.1.0" in outputs["rtmdet --version"]
    assert "Average Precision" in next(o for c, o in ran if c.startswith("rtmdet eval"))
    # The official-weights block: download + convert + predict; check the CLI accepts them.
    assert weights[0].startswith("wget ") and "download.openmmlab.com" in weights[0]
    from rtmdet.commands.common import parse
    from rtmdet.commands.main import build_parser
    for cmd in weights[1:]:
        argv = shlex.split(cmd)[1:]
        parse(build_parser(argv[0]), argv)                       # raises SystemExit if wrong
