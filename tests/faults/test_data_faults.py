"""Bad annotations and images: counted skips (never trained on, never a crash), and the
counts reach the summary printed at the end of training."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rtmdet.commands.main import main
from rtmdet.data.bad_input import BadInput
from rtmdet.data.coco import CocoDataset
from rtmdet.data.dota import parse_dota_labels


def _copy(synth: Path, dst: Path) -> Path:
    shutil.copytree(synth, dst)
    return dst


BAD_BOXES = {   # bbox -> reason counted
    "nan": ([float("nan"), 1.0, 10.0, 10.0], "non-finite bbox coordinate"),
    "inf-width": ([1.0, 1.0, float("inf"), 10.0], "non-finite bbox coordinate"),
    "string": ([1.0, "a", 10.0, 10.0], "malformed bbox"),
    "three": ([1.0, 1.0, 10.0], "malformed bbox"),
    "negative": ([1.0, 1.0, -5.0, 10.0], "zero, negative or sub-pixel box size"),
}


@pytest.mark.parametrize("kind", list(BAD_BOXES))
def test_bad_box_is_a_counted_skip(synth, tmp_path, kind):
    root = _copy(synth, tmp_path / "d")
    ann_file = root / "annotations" / "instances_train.json"
    ann = json.loads(ann_file.read_text())
    n_before = len(ann["annotations"])
    ann["annotations"][0]["bbox"] = BAD_BOXES[kind][0]
    ann_file.write_text(json.dumps(ann))                  # json writes NaN / Infinity
    ds = CocoDataset(ann_file, root / "images" / "train", train=False, bad=BadInput("skip"))
    assert dict(ds.bad.counts) == {BAD_BOXES[kind][1]: 1}
    assert sum(len(r["labels"]) for r in ds.records) == n_before - 1


@pytest.mark.parametrize("cut", ["jpeg-half", "jpeg-no-eoi"])
def test_truncated_image_is_counted_and_summarised(synth, tiny_args, tmp_path, capsys, cut):
    root = _copy(synth, tmp_path / "d")
    ann = json.loads((root / "annotations" / "instances_train.json").read_text())
    used = ann["annotations"][0]["image_id"]              # an image training does not filter
    first = root / "images" / "train" / next(i["file_name"] for i in ann["images"]
                                             if i["id"] == used)
    data = first.read_bytes()
    first.write_bytes(data[: len(data) // 2] if cut == "jpeg-half" else data[:-2])
    args = [a if not a.startswith("data.root=") else f"data.root={root}" for a in tiny_args]
    assert main(["train", *args, "train.epochs=1", "train.stage2_epochs=0",
                 "data.mosaic=false", "data.mixup=false", "train.max_iters_per_epoch=4",
                 "--work-dir", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("bad input:"))
    assert "× truncated image" in line and int(line.split("skipped ")[1].split(" ×")[0]) >= 1


def test_dota_label_not_utf8_is_counted(tmp_path):
    path = tmp_path / "P0001.txt"
    path.write_bytes(b"imagesource:GoogleEarth\n0 0 10 0 10 10 0 10 plane 0 \xe9\n")
    bad = BadInput("skip")
    quads, labels, _ = parse_dota_labels(path, bad=bad)
    assert len(labels) == 0 and dict(bad.counts) == {"label file not UTF-8 text": 1}


def test_empty_training_set_is_one_line(synth, tiny_args, tmp_path, capsys):
    root = _copy(synth, tmp_path / "d")
    ann_file = root / "annotations" / "instances_train.json"
    ann = json.loads(ann_file.read_text())
    ann_file.write_text(json.dumps({**ann, "images": [], "annotations": []}))
    args = [a if not a.startswith("data.root=") else f"data.root={root}" for a in tiny_args]
    assert main(["train", *args, "--work-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "rtmdet: error:" in err and "empty" in err and "Traceback" not in err
