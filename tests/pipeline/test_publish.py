"""Publishing runs/reports/ to reports/ (the copy the targets ask for) and the onsuccess
summary of what was published. The DAG side (a fresh clone computes, a second run does
nothing) is tests/pipeline/test_pipeline.py::test_reduced_smoke_dag_end_to_end."""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from rtmdet.pipeline.headline import headline, summary
from rtmdet.pipeline.publish import main, publish, source_of
from rtmdet.utils.errors import UserError

CSV = ("variant,label,paper_AP,ours_AP_mean,ours_AP_ci_low,ours_AP_ci_high,ours_delta,"
       "ours_delta_ci_low,ours_delta_ci_high,verdict\n"
       "k3,3x3,50.0,30.1,27.9,32.3,-1.07,-1.69,-0.44,agrees\n"
       "k5,5x5,50.9,31.2,29.0,33.3,,,,reference\n"
       "k7,7x7,51.1,,,,,,,\n"
       "k9,9x9,,29.0,,,-2.2,,,unresolved (n=1)\n")


def _built(tmp: Path) -> tuple[Path, Path]:
    src, dst = tmp / "runs/reports", tmp / "reports"
    (src / "tables").mkdir(parents=True)
    (src / "tables/k.md").write_text("# new\n")
    (src / "tables/k.csv").write_text(CSV)
    (dst / "tables").mkdir(parents=True)
    (dst / "tables/k.md").write_text("# committed\n")
    return src, dst


def test_publish_copies_and_writes_the_manifest(tmp_path):
    src, dst = _built(tmp_path)
    manifest = tmp_path / "runs/reports/published/k.json"
    rc = main(["--src", str(src), "--dst", str(dst), "--manifest", str(manifest),
               str(dst / "tables/k.md"), str(dst / "tables/k.csv")])
    assert rc == 0
    assert (dst / "tables/k.md").read_text() == "# new\n"
    assert (dst / "tables/k.csv").read_text() == CSV
    files = json.loads(manifest.read_text())["files"]
    assert files[str(dst / "tables/k.csv")] == hashlib.sha256(CSV.encode()).hexdigest()
    assert not [p for p in dst.rglob(".*.tmp")]                       # no temp file left


def test_publish_checks_every_source_before_writing(tmp_path):
    src, dst = _built(tmp_path)
    with pytest.raises(UserError, match="runs/reports/tables/missing.png: not found"):
        publish([dst / "tables/k.md", dst / "tables/missing.png"], src, dst)
    assert (dst / "tables/k.md").read_text() == "# committed\n"        # untouched
    with pytest.raises(UserError, match="not under the publish folder"):
        source_of(tmp_path / "elsewhere/k.md", src, dst)
    assert main(["--src", str(src), "--dst", str(dst), str(dst / "tables/nope.md")]) == 2


def test_summary_lists_only_tables_published_since_the_start(tmp_path):
    src, dst = _built(tmp_path)
    (dst / "tables/old.md").write_text("| a | b |\n|---|---|\n| 1 | 2 |\n")
    old = time.time() - 3600
    os.utime(dst / "tables/old.md", (old, old))
    start = time.time() - 1
    publish([dst / "tables/k.md", dst / "tables/k.csv"], src, dst)
    text = summary(["k", "old"], start, dst)
    assert text.startswith(f"Tables written (1); the index is {dst / 'README.md'}:")
    assert f"{dst / 'tables/k.md'}:" in text and "old.md" not in text
    lines = headline("k", dst)
    assert lines[2].split() == ["k3", "50.0", "30.1", "[27.9,", "32.3]", "-1.1", "[-1.7,",
                                "-0.4]", "agrees"]
    assert lines[3].split()[:3] == ["k5", "50.9", "31.2"] and lines[3].endswith("reference")
    assert "not run" in lines[4]
    assert lines[5].split() == ["k9", "-", "29.0", "-2.2", "unresolved", "(n=1)"]   # one seed
    # a table without AP columns (timing): its markdown rows, separator left out
    assert headline("old", dst)[1:] == ["  | a | b |", "  | 1 | 2 |"]
    assert summary(["old"], start, dst) == ""                            # nothing new
