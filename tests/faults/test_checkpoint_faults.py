"""Bad checkpoints given to eval, predict, resume and convert: one line each, corrupt and
unsafe told apart (a corrupt file is not made loadable by dropping the safety), the pickled
payload never runs, another architecture is named in one line, NaN weights are refused."""
from __future__ import annotations

import os
import pickle
import shutil

import pytest
import torch

from rtmdet.commands.main import main

from .conftest import one_error_line


class _Payload:
    """Unpickling this runs ``touch <marker>``: the file must be refused, the marker absent."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _write(kind: str, good: str, path, marker) -> None:
    data = open(good, "rb").read()
    if kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(bytes(range(256)) * 8)
    elif kind == "not-a-checkpoint":
        torch.save([1, 2, 3], path)
    elif kind == "unsafe-pickle":
        with open(path, "wb") as f:
            pickle.dump({"state_dict": _Payload(str(marker))}, f)
    elif kind == "unsafe-torch-save":
        torch.save({"state_dict": {}, "x": _Payload(str(marker))}, path)
    elif kind == "non-finite":
        ckpt = torch.load(good, weights_only=True)
        key = next(k for k, v in ckpt["state_dict"].items() if v.is_floating_point())
        ckpt["state_dict"][key] = torch.full_like(ckpt["state_dict"][key], float("nan"))
        torch.save(ckpt, path)


CASES = {   # kind -> what the one line says
    "truncated": "corrupt or truncated checkpoint",
    "empty": "empty file",
    "garbage": "corrupt or truncated checkpoint",
    "not-a-checkpoint": "not an rtmdet checkpoint",
    "unsafe-pickle": "refused: it holds pickled Python objects (posix system)",
    "unsafe-torch-save": "refused: it holds pickled Python objects",
    "non-finite": "hold NaN/inf",
}


def _command(cmd: str, ckpt, tiny_args, tmp_path) -> list[str]:
    if cmd == "eval":
        return ["eval", *tiny_args, "--weights", str(ckpt), "--out", str(tmp_path / "ev")]
    if cmd == "predict":
        src = tmp_path / "src"
        src.mkdir(exist_ok=True)
        shutil.copy(next((tiny_args_root(tiny_args) / "images" / "val").iterdir()), src / "a.jpg")
        return ["predict", "--weights", str(ckpt), "--source", str(src),
                "--out", str(tmp_path / "pr")]
    if cmd == "resume":
        work = tmp_path / "run"
        work.mkdir(exist_ok=True)
        shutil.copy(ckpt, work / "last.pt")
        return ["train", *tiny_args, "--resume", "--work-dir", str(work)]
    return ["convert", "mmdet", str(ckpt), str(tmp_path / "conv.pt"), "--model", "rtmdet-tiny"]


def tiny_args_root(tiny_args):
    from pathlib import Path
    return Path(next(a for a in tiny_args if a.startswith("data.root=")).split("=", 1)[1])


@pytest.mark.parametrize("cmd", ["eval", "predict", "resume", "convert"])
@pytest.mark.parametrize("kind", list(CASES))
def test_bad_checkpoint_is_one_line(kind, cmd, tiny_ckpt, tiny_args, tmp_path, capsys):
    if kind == "non-finite" and cmd in ("resume", "convert"):
        pytest.skip("resume/convert read training or official files; NaN is checked at use")
    marker = tmp_path / "PAYLOAD_RAN"
    bad = tmp_path / f"{kind}.pt"
    _write(kind, str(tiny_ckpt), bad, marker)
    assert main(_command(cmd, bad, tiny_args, tmp_path)) == 2
    line = one_error_line(capsys.readouterr().err)
    assert CASES[kind] in line, line
    assert not marker.exists()
    if cmd == "convert":
        assert ("--unsafe-load" in line) == kind.startswith("unsafe"), line
        assert not (tmp_path / "conv.pt").exists()


def test_wrong_architecture_is_one_line(tiny_ckpt, tiny_args, tmp_path, capsys):
    """An rtmdet-tiny checkpoint evaluated as rtmdet-s (was a 410-line traceback)."""
    args = ["rtmdet-s", *tiny_args[1:], "model.backbone.widen_factor=0.5"]
    assert main(["eval", *args, "--weights", str(tiny_ckpt), "--out", str(tmp_path)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "weights do not fit the model of rtmdet-s" in line and "with another shape" in line


def test_missing_checkpoint(tiny_args, tmp_path, capsys):
    assert main(["eval", *tiny_args, "--weights", str(tmp_path / "no.pt")]) == 2
    assert "checkpoint not found" in one_error_line(capsys.readouterr().err)
