"""Whether ``rtmdet train`` may use a work dir: nothing is overwritten without being asked.

Rerunning a command with the same ``--work-dir`` but without ``--resume`` used to replace a
``last.pt`` at iteration 16 with one at iteration 3. A folder holding a checkpoint is therefore
refused unless the command says what to do with it; ``--auto-resume`` (the pipeline's train
rule, whose killed jobs must continue, not restart) resumes a ``last.pt`` of the same config and
starts over otherwise, so it implies ``--exist-ok``.
"""
from __future__ import annotations

import logging
from pathlib import Path

from rtmdet.config import Config, config_hash
from rtmdet.utils.checkpoint_file import load_checkpoint
from rtmdet.utils.errors import CheckpointError, UserError

log = logging.getLogger(__name__)
CHECKPOINTS = ("last.pt", "final.pt")


def resume_decision(work_dir: Path, cfg: Config, resume: bool, auto_resume: bool,
                    exist_ok: bool) -> bool:
    """True to resume from ``work_dir/last.pt``, False to start fresh; :class:`UserError` for
    a folder with checkpoints that neither flag covers."""
    if sum((resume, auto_resume, exist_ok)) > 1:
        raise UserError("--resume, --auto-resume and --exist-ok exclude each other")
    if resume:
        return True
    last = work_dir / "last.pt"
    if auto_resume and last.exists():
        try:
            same = load_checkpoint(last).get("meta", {}).get("config_hash") == config_hash(cfg)
        except CheckpointError as e:
            log.warning("--auto-resume: %s; starting fresh", e)
            return False
        if same:
            return True
        log.warning("--auto-resume: %s belongs to another config; starting fresh", last)
        return False
    found = [n for n in CHECKPOINTS if (work_dir / n).exists()]
    if found and not (exist_ok or auto_resume):
        raise UserError(f"{work_dir}: already holds {' and '.join(found)} from an earlier "
                        "training; --resume continues it, --exist-ok starts over in it (replacing "
                        "them), or choose another --work-dir")
    return False
