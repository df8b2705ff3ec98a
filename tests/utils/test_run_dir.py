"""A new run folder per run: runs/<name>, then <name>2, <name>3, ...; --resume finds the newest."""
from __future__ import annotations

from rtmdet.utils.run_dir import latest_run_dir, new_run_dir


def test_numbering_skips_used_folders_and_reuses_empty_ones(tmp_path):
    base = tmp_path / "runs" / "exp"
    assert new_run_dir(base) == base                      # nothing there yet
    base.mkdir(parents=True)
    assert new_run_dir(base) == base                      # empty: reused
    (base / "config.yaml").write_text("x")
    assert new_run_dir(base) == tmp_path / "runs" / "exp2"
    (tmp_path / "runs" / "exp2").mkdir()
    (tmp_path / "runs" / "exp2" / "f").write_text("x")
    (tmp_path / "runs" / "exp_other").mkdir()             # another name, not a number
    assert new_run_dir(base) == tmp_path / "runs" / "exp3"


def test_latest_run_dir_is_the_highest_number_with_a_checkpoint(tmp_path):
    base = tmp_path / "exp"
    assert latest_run_dir(base) == base
    for name, ckpt in (("exp", True), ("exp2", True), ("exp10", True), ("exp11", False)):
        (tmp_path / name).mkdir()
        if ckpt:
            (tmp_path / name / "last.pt").write_bytes(b"")
    assert latest_run_dir(base) == tmp_path / "exp10"      # numeric, not lexical, order
