"""The ``rtmdet`` command line: ``rtmdet <command> [args]``.

Each command is one module of :mod:`rtmdet.commands` exposing ``add_arguments(parser)`` and
``run(args) -> int``. Modules are imported only when listed below, so adding a command is
one line here.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys

from rtmdet import __version__
from rtmdet.commands.common import parse
from rtmdet.config import ConfigError
from rtmdet.models.weights import WeightMismatchError
from rtmdet.utils.errors import UserError

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("rtmdet.commands.info", "parameters and FLOPs of a model"),
    "convert": ("rtmdet.commands.convert", "import official weights (mmdet) into our format"),
    "predict": ("rtmdet.commands.predict", "detect objects in images, draw boxes, write JSON"),
    "data": ("rtmdet.commands.data", "synthetic data, DOTA splitting, augmentation preview"),
    "train": ("rtmdet.commands.train", "train a model from a config"),
    "eval": ("rtmdet.commands.eval", "COCO evaluation of a checkpoint"),
    "export": ("rtmdet.commands.export", "export to ONNX"),
    "bench": ("rtmdet.commands.bench", "latency benchmarks"),
    "report": ("rtmdet.commands.report", "render ablation tables and figures"),
    "mlflow": ("rtmdet.commands.mlflow", "set up the MLflow store and experiments, upload spools"),
}


def _broken(name: str, error: Exception):
    def run(args: argparse.Namespace) -> int:
        print(f"error: `rtmdet {name}` is unavailable: {type(error).__name__}: {error}",
              file=sys.stderr)
        return 1
    return run


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full CLI; with ``only``, just that command's module is imported (the others get a
    help line only): every pipeline job is one ``rtmdet`` process, and importing all ten
    command modules (scipy, ONNX, MLflow, ...) cost ~3 s of start-up per job."""
    parser = argparse.ArgumentParser(prog="rtmdet", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"rtmdet {__version__}",
                        help="print the version and exit")
    parser.add_argument("--debug", action="store_true",
                        help="full traceback for errors (also RTMDET_DEBUG=1; anywhere on the line)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=help_text)
            continue
        try:
            if importlib.util.find_spec(module) is None:
                continue  # not written yet
            mod = importlib.import_module(module)
        except Exception as e:  # noqa: BLE001 - one broken command must not take down the CLI
            p = sub.add_parser(name, help=f"{help_text} [unavailable]", add_help=False)
            p.add_argument("rest", nargs=argparse.REMAINDER)
            p.set_defaults(_run=_broken(name, e))
            continue
        p = sub.add_parser(name, help=help_text)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def _device_message(e: BaseException) -> str | None:
    """Torch's ways of saying "no CUDA here" (a config or flag asked for cuda on a CPU-only
    machine or build)."""
    text = str(e)
    if any(s in text for s in ("not compiled with CUDA", "no NVIDIA driver", "CUDA driver",
                               "No CUDA GPUs", "CUDA is not available")):
        return (f"CUDA requested but not available here ({text.splitlines()[0][:120]}); "
                "use --device cpu / train.device=cpu")
    return None


def user_error_message(e: BaseException) -> tuple[str, int] | None:
    """``(one line, exit status)`` for an expected error class, None for a bug (traceback).

    The one place where user mistakes become one line: config (ConfigError, also YAML and
    range checks), data (DataError), checkpoints (CheckpointError, WeightMismatchError: corrupt,
    unsafe and mismatched files have their own messages), paths (any OSError naming a file:
    missing, unreadable, unwritable, a folder where a file was expected, disk full), text that is
    not UTF-8, and missing CUDA. A diverged training exits 3, the others 2."""
    from rtmdet.data.bad_input import DataError
    from rtmdet.utils.errors import DivergenceError

    if isinstance(e, DivergenceError):
        return str(e), 3
    if isinstance(e, (UserError, ConfigError, WeightMismatchError, DataError)):
        return str(e).splitlines()[0] if isinstance(e, WeightMismatchError) else str(e), 2
    if isinstance(e, OSError) and (e.filename is not None or isinstance(e, FileNotFoundError)):
        if e.filename is None:
            return str(e), 2
        where = f"{e.filename}" + (f" -> {e.filename2}" if e.filename2 else "")
        return f"{where}: {e.strerror or e}", 2
    if isinstance(e, UnicodeError):
        return f"input is not UTF-8 text ({e})", 2
    if isinstance(e, (RuntimeError, AssertionError)):
        msg = _device_message(e)
        if msg:
            return msg, 2
    return None


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("RTMDET_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    args = parse(build_parser(argv[0] if argv and argv[0] in COMMANDS else None), argv)
    try:
        return int(args._run(args) or 0)
    except Exception as e:  # noqa: BLE001 - classified: user mistakes one line, bugs a traceback
        found = user_error_message(e)
        if found is None or debug:
            raise
        print(f"rtmdet: error: {found[0]}", file=sys.stderr)
        return found[1]


if __name__ == "__main__":
    sys.exit(main())
