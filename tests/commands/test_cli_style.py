"""One CLI style: key=value overrides anywhere (and the -o alias), help text on every flag,
``rtmdet --version``, ``--device auto``."""
from __future__ import annotations

import argparse

import pytest

from rtmdet import __version__
from rtmdet.commands.common import parse, resolve_device
from rtmdet.commands.main import COMMANDS, build_parser, main


def _walk(parser: argparse.ArgumentParser, path: str):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield path, action


def test_every_flag_of_every_command_has_help():
    actions = list(_walk(build_parser(), "rtmdet"))
    missing = [f"{path}: {'/'.join(a.option_strings) or a.dest}" for path, a in actions
               if not a.help]
    assert not missing, missing
    walked = {p.split()[1] for p, _ in actions if " " in p}
    assert walked == set(COMMANDS)                   # every command was imported and walked


@pytest.mark.parametrize("argv, config, overrides", [
    (["train", "rtmdet-tiny", "--mlflow", "data.img_size=128"], "rtmdet-tiny", ["data.img_size=128"]),
    (["train", "rtmdet-tiny", "a.b=1", "--resume", "c=2", "-o", "d.e=[3,4]"], "rtmdet-tiny",
     ["a.b=1", "c=2", "d.e=[3,4]"]),
    (["eval", "--weights", "w.pt", "eval.score_thr=0.1", "--fast"], None, ["eval.score_thr=0.1"]),
    (["eval", "eval.score_thr=0.1", "--weights", "w.pt", "seed=1"], None,
     ["eval.score_thr=0.1", "seed=1"]),
    (["export", "rtmdet-s", "--no-check", "model.backbone.kernel_size=7"], "rtmdet-s",
     ["model.backbone.kernel_size=7"]),
    (["export", "--weights", "w.pt", "-o", "bench.size=320"], None, ["bench.size=320"]),
    (["predict", "--weights", "w.pt", "--source", "x", "--out", "o", "eval.iou_thr=0.5"], None,
     ["eval.iou_thr=0.5"]),
    (["bench", "latency", "rtmdet-s", "--runs", "2", "bench.size=320", "-o", "seed=3"],
     "rtmdet-s", ["bench.size=320", "seed=3"]),
    (["data", "show", "rtmdet-s", "--n", "4", "data.img_size=320"], "rtmdet-s",
     ["data.img_size=320"]),
])
def test_overrides_anywhere_on_the_line(argv, config, overrides):
    args = parse(build_parser(argv[0]), argv)
    assert args.config == config
    assert args.overrides == overrides and args.override == overrides


def test_a_stray_word_is_still_an_error(capsys):
    with pytest.raises(SystemExit) as e:
        parse(build_parser("train"), ["train", "rtmdet-tiny", "--mlflow", "oops"])
    assert e.value.code == 2 and "unrecognized arguments: oops" in capsys.readouterr().err
    with pytest.raises(SystemExit):                  # overrides only where a config is loaded
        parse(build_parser("convert"), ["convert", "mmdet", "a.pth", "b.pt", "--model",
                                         "rtmdet-s", "seed=1"])


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"rtmdet {__version__}"


def test_device_defaults_to_auto():
    for argv in (["eval", "--weights", "w.pt"],
                 ["predict", "--weights", "w", "--source", "s", "--out", "o"]):
        assert parse(build_parser(argv[0]), argv).device == "auto"
    assert resolve_device("auto") in ("cpu", "cuda") and resolve_device("cpu") == "cpu"
