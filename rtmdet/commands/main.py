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


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    argv = sys.argv[1:] if argv is None else argv
    args = parse(build_parser(argv[0] if argv and argv[0] in COMMANDS else None), argv)
    try:
        return int(args._run(args) or 0)
    except (UserError, ConfigError, WeightMismatchError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
