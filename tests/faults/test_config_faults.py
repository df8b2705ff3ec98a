"""Bad config values and files: one ``rtmdet: error:`` line naming the source and the field,
exit status 2, nothing trained or written (issue #17: each used to die deep inside, or train
something else silently)."""
from __future__ import annotations

import pytest

from rtmdet.commands.main import main
from rtmdet.config import load_config

from .conftest import one_error_line

BAD_VALUES = [      # override -> what the one line must say
    ("train.batch_size=0", "train.batch_size: Input should be greater than or equal to 1"),
    ("train.checkpoint_interval=0", "train.checkpoint_interval: Input should be greater than"),
    ("train.epochs=-1", "train.epochs: Input should be greater than or equal to 1"),
    ("train.base_lr=-1.0", "train.base_lr: Input should be greater than 0"),
    ("train.base_lr=.nan", "train.base_lr: Input should be a finite number"),
    ("train.threads=-1", "train.threads: Input should be greater than or equal to 1"),
    ("train.threads=0", "train.threads: Input should be greater than or equal to 1"),
    ("train.max_iters_per_epoch=0", "train.max_iters_per_epoch: Input should be greater than"),
    ("data.num_workers=-1", "data.num_workers: Input should be greater than or equal to 0"),
    ("data.img_size=100", "data.img_size: must be a multiple of the largest stride 32"),
    ("model.backbone.kernel_size=4", "model.backbone.kernel_size: must be an odd number"),
    ("model.backbone.kernel_size=0", "model.backbone.kernel_size: must be an odd number"),
    ("train.betas=[0.9]", "train.betas: List should have at least 2 items"),
    ("model.head.strides=[8,16]", "model.head.strides: List should have at least 3 items"),
    ("model.head.strides=[8,32,16]", "model.head.strides: must be strictly increasing"),
    ("train.device=gpu", "train.device: must be auto, cpu, cuda or cuda:N"),
    ("data.flip_prob=1.5", "data.flip_prob: Input should be less than or equal to 1"),
    ("train.nan_policy=ignore", "train.nan_policy: Input should be 'stop' or 'skip_step'"),
]


@pytest.mark.parametrize("override,message", BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_bad_value_is_one_line(tiny_args, tmp_path, capsys, override, message):
    work = tmp_path / "w"
    assert main(["train", *tiny_args, override, "--work-dir", str(work)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"override {override.split('=')[0]}: {message}" in line, line
    assert not work.exists()


BAD_FILES = [      # file content -> what the one line must say
    (b"", "empty file"),
    (b"base: rtmdet-tiny\ntrain:\n  epochs: 1\n  epochs: 2\n", "duplicate key 'epochs' (line 3 and line 4)"),
    (b"base: rtmdet-tiny\nname: caf\xe9\n", "not UTF-8 text"),
    (b"base: rtmdet-tiny\ntrain: [1, 2\n", "invalid YAML"),
    (b"- base\n", "top level must be a mapping"),
    (b"base: rtmdet-tiny\ntrain:\n  epochz: 1\n", "train.epochz: unknown key"),
]


@pytest.mark.parametrize("content,message", BAD_FILES,
                         ids=["empty", "duplicate-key", "latin1", "syntax", "list", "typo"])
def test_bad_yaml_file_is_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "cfg.yaml"
    path.write_bytes(content)
    assert main(["train", str(path), "--work-dir", str(tmp_path / "w")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(path) in line and message in line, line


def test_directory_named_like_a_yaml(tmp_path, capsys):
    (tmp_path / "x.yaml").mkdir()
    assert main(["train", str(tmp_path / "x.yaml")]) == 2
    assert "is a directory" in one_error_line(capsys.readouterr().err)


def test_scientific_notation_is_a_float(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("base: rtmdet-tiny\ntrain:\n  base_lr: 4e-3\n  weight_decay: 5E-2\n")
    cfg = load_config(path, ["train.warmup_ratio=1e-5"])
    assert (cfg.train.base_lr, cfg.train.weight_decay, cfg.train.warmup_ratio) == (4e-3, 5e-2, 1e-5)


def test_debug_shows_the_traceback(tiny_args, tmp_path, monkeypatch):
    from rtmdet.config import ConfigError
    with pytest.raises(ConfigError, match="train.batch_size"):
        main(["train", *tiny_args, "train.batch_size=0", "--debug"])
    monkeypatch.setenv("RTMDET_DEBUG", "1")
    with pytest.raises(ConfigError):
        main(["train", *tiny_args, "train.batch_size=0"])
