"""``--dtype`` on ``bench latency``, ``eval`` and ``predict``: the choices, and one-line errors for
a name that does not exist or a precision the chosen backend or model cannot run."""
from __future__ import annotations

import pytest

from rtmdet.commands.common import parse
from rtmdet.commands.main import build_parser, main


@pytest.mark.parametrize("argv", [
    ["bench", "latency", "rtmdet-tiny"],
    ["eval", "--weights", "w.pt"],
    ["predict", "--weights", "w.pt", "--source", "s", "--out", "o"],
])
def test_dtype_choices(argv, capsys):
    cmd = argv[0]
    assert parse(build_parser(cmd), argv).dtype == "fp32"                 # the default
    for dtype in ("bf16", "int8"):
        args = parse(build_parser(cmd), argv + ["--dtype", dtype])
        assert args.dtype == dtype and args.calib_images == 32
    with pytest.raises(SystemExit) as e:
        parse(build_parser(cmd), argv + ["--dtype", "int4"])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2
    # one error line after the usage (argparse quotes the choices or not by Python version)
    assert "error: argument --dtype: invalid choice: 'int4' (choose from" in err[-1]
    assert all(d in err[-1] for d in ("fp32", "bf16", "int8"))


def test_a_precision_the_backend_cannot_run_is_one_line(capsys):
    rc = main(["bench", "latency", "rtmdet-tiny", "--dtype", "bf16", "--backend", "onnxruntime",
               "--size", "64", "--runs", "1", "--warmup", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == ["rtmdet: error: --dtype bf16 runs on the torch backend, not "
                               "onnxruntime; use --backend torch"]
