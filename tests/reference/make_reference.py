"""Regenerate every reference file in tests/reference/ from the official implementation
(``make reference``).

The official code never enters this repository and never runs in the project's venv: it lives
in a venv of its own (default ``../oracle/venv`` beside the checkout, ``$RTMDET_ORACLE`` to
move it), which this script creates when missing, in these steps:

1. ``python3 -m venv $RTMDET_ORACLE/venv``;
2. ``pip install torch==2.13.0`` (the CPU wheel the project pins) and the runtime dependencies
   of mmdet/mmengine/mmcv (``ORACLE_DEPS``; numpy < 2 as mmcv 2.x needs);
3. ``pip install --no-deps mmdet==3.3.0 mmengine==0.10.7 mmcv-lite==2.2.0`` (``--no-deps`` so
   pip never replaces torch; the version bounds mmdet/mmrotate check are relaxed at import
   time by ``oracle_env.py``, no installed file is edited);
4. mmrotate 1.x is not on the package registry: ``mmrotate/`` and ``configs/`` of the
   ``dev-1.x`` commit ``MMROTATE_COMMIT`` are extracted with ``git archive`` from a clone of
   ``$MMROTATE_REPO`` (default the GitHub repository; a local mirror path works too) into
   ``$RTMDET_ORACLE/mmrotate``;
5. the official CPU NMS ops are compiled from mmcv-lite's C++ sources on first use
   (``oracle_env.py``, cached in ``$RTMDET_ORACLE/build``).

Then ``oracle_dump.py`` writes one ``<preset>.pt`` per preset and ``oracle_init.py`` writes
``init_stats.json`` (see tests/reference/README.md). Timing and the installed versions are
printed and written to ``tests/reference/ORACLE_ENV.txt``.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
ORACLE = Path(os.environ.get("RTMDET_ORACLE", REPO.parent / "oracle")).resolve()
VENV_PY = ORACLE / "venv" / "bin" / "python"
MMROTATE_REPO = os.environ.get("MMROTATE_REPO", "https://github.com/open-mmlab/mmrotate.git")
MMROTATE_COMMIT = "3ff004eb21ea040455b5585db229edba4037f1bf"   # dev-1.x, 1.0.0rc1
OFFICIAL = ["mmdet==3.3.0", "mmengine==0.10.7", "mmcv-lite==2.2.0"]
ORACLE_DEPS = ["torch==2.13.0", "numpy==1.26.4", "opencv-python-headless==4.11.0.86",
               "pycocotools", "scipy", "shapely", "terminaltables", "addict", "yapf", "rich",
               "termcolor", "packaging", "pyyaml", "Pillow", "matplotlib", "six", "tqdm",
               "ninja"]


def _run(cmd: list[str], **kw) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def ensure_venv(rotated: bool = True) -> list[str]:
    """Create the oracle venv when missing; returns the steps it ran (for the log).

    ``rotated=False`` skips the mmrotate extraction (steps 1-3 only): callers that train or run
    the detection model alone (``benchmarks/parity_official.py``) need no GitHub clone.
    """
    steps = []
    if not VENV_PY.exists():
        ORACLE.mkdir(parents=True, exist_ok=True)
        _run([sys.executable, "-m", "venv", ORACLE / "venv"])
        _run([VENV_PY, "-m", "pip", "install", "-q", *ORACLE_DEPS])
        _run([VENV_PY, "-m", "pip", "install", "-q", "--no-deps", *OFFICIAL])
        steps.append("created venv, installed " + " ".join(ORACLE_DEPS + OFFICIAL))
    src = ORACLE / "mmrotate"
    if not rotated:
        return steps
    if (src / "COMMIT").exists() and (src / "COMMIT").read_text().strip() == MMROTATE_COMMIT:
        return steps
    src.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        git_dir = Path(tmp) / "mmrotate.git"
        _run(["git", "clone", "-q", "--bare", "--single-branch", "--branch", "dev-1.x",
              MMROTATE_REPO, git_dir])
        archive = subprocess.run(["git", "--git-dir", str(git_dir), "archive", MMROTATE_COMMIT,
                                  "mmrotate", "configs"], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    (src / "COMMIT").write_text(MMROTATE_COMMIT + "\n")
    steps.append(f"extracted mmrotate {MMROTATE_COMMIT} from {MMROTATE_REPO}")
    return steps


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="*", help="only these presets (default: all)")
    ap.add_argument("--skip-init", action="store_true", help="do not rewrite init_stats.json")
    args = ap.parse_args(argv)
    t0 = time.time()
    steps = ensure_venv()
    t_setup = time.time() - t0
    env = dict(os.environ, RTMDET_ORACLE=str(ORACLE), OMP_NUM_THREADS="1",
               PYTHONWARNINGS="ignore")
    dump = [VENV_PY, HERE / "oracle_dump.py", "--out", HERE]
    _run(dump + (["--presets", *args.presets] if args.presets else []), env=env)
    t_dump = time.time() - t0 - t_setup
    if not args.skip_init and (HERE / "oracle_init.py").exists():
        _run([VENV_PY, HERE / "oracle_init.py", "--out", HERE / "init_stats.json"], env=env)
    t_all = time.time() - t0
    freeze = subprocess.run([str(VENV_PY), "-m", "pip", "freeze"], capture_output=True,
                            text=True, check=True).stdout
    report = (f"# oracle venv: {ORACLE / 'venv'}\n# mmrotate: {MMROTATE_COMMIT} (dev-1.x)\n"
              f"# last `make reference`: setup {t_setup:.0f} s ({'; '.join(steps) or 'reused'}),"
              f" reference outputs {t_dump:.0f} s, total {t_all:.0f} s\n" + "".join(
                  ("torch==2.13.0 (local CPU wheel)" if line.startswith("torch @") else line) + "\n"
                  for line in freeze.splitlines()))
    (HERE / "ORACLE_ENV.txt").write_text(report)
    print(report.split("\n", 3)[2], flush=True)


if __name__ == "__main__":
    main()
