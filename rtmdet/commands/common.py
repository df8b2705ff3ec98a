"""Argument conventions shared by every command, so the CLI has one style:

- ``key=value`` config overrides anywhere on the command line (before, between or after the
  flags), the same for train/eval/export/bench/predict/data show; ``-o key=value`` is kept as an
  alias (older scripts and the pipeline use it);
- ``--device auto`` (CUDA when present, else CPU) by default;
- eval/export/predict take the config stored in the checkpoint when no CONFIG is given.

argparse alone cannot take positionals after flags once a ``nargs="*"`` positional has been
filled, so :func:`parse` parses with ``parse_known_args`` and moves the leftover tokens that look
like ``dotted.key=value`` into ``overrides``; anything else left over is the usual
"unrecognized arguments" error.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path
import torch

from rtmdet.config import Config, load_config
from rtmdet.export.ort_detector import int8_detector, openvino_detector
from rtmdet.models.precision import DTYPES, DtypeError, resolve_dtype
from rtmdet.models.weights import WeightMismatchError, load_weights
from rtmdet.utils.device import resolve_device  # noqa: F401  (the commands' import point)
from rtmdet.utils.io import load_checkpoint

# a dotted config key followed by '=': "data.img_size=128", "seed=1", "train.assigner.type=atss"
_OVERRIDE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*=")


def looks_like_override(token: str | None) -> bool:
    return bool(token) and bool(_OVERRIDE.match(token)) and not Path(token).exists()


def add_overrides(p: argparse.ArgumentParser) -> None:
    """``key=value ...`` (anywhere) and the ``-o/--override KEY=VALUE`` alias."""
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="dotted config overrides, e.g. data.img_size=320 (anywhere on the line)")
    p.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                   help="the same as a bare key=value (kept for older scripts)")


def add_device(p: argparse.ArgumentParser, default: str | None = "auto",
               help_text: str = "auto (CUDA when available, else CPU), cpu, cuda or cuda:N") -> None:
    p.add_argument("--device", default=default, help=help_text)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


ENGINES = ("torch", "openvino")


def add_dtype(p: argparse.ArgumentParser, choices: tuple[str, ...] = DTYPES,
              engine: bool = True) -> None:
    """``--dtype``: inference precision (:mod:`rtmdet.models.precision`), fp32 by default;
    ``--engine`` (eval, predict; ``bench latency`` says ``--backend``)."""
    p.add_argument("--dtype", choices=choices, default="fp32",
                   help="inference precision: fp32; bf16 = CPU bf16, torch autocast or OpenVINO "
                        "(fp32 with one log line where the CPU has no native bf16)"
                        + ("; int8 = onnxruntime CPU on a statically quantised graph calibrated "
                           "on --calib-images training images" if "int8" in choices else ""))
    if "int8" in choices:
        p.add_argument("--calib-images", type=_positive_int, default=32, metavar="N",
                       help="int8: training images of data.root to calibrate on (default 32)")
    if not engine:
        return
    p.add_argument("--engine", choices=ENGINES, default="torch",
                   help="fp32/bf16 inference engine: torch (default), or openvino = our ONNX "
                        "graph compiled by OpenVINO on the CPU (optional extra 'openvino'; "
                        "detection models)")


def add_config(p: argparse.ArgumentParser) -> None:
    """Optional CONFIG: without it the config stored in ``--weights`` is used."""
    p.add_argument("config", nargs="?", default=None,
                   help="preset, YAML or a run's config.yaml (default: the config stored in the "
                        "checkpoint given by --weights)")


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """``parser.parse_args`` with overrides accepted anywhere (see the module docstring)."""
    args, extra = parser.parse_known_args(argv)
    takes_overrides = hasattr(args, "overrides")
    if takes_overrides:
        if getattr(args, "config", None) is not None and looks_like_override(args.config) \
                and _config_is_optional(args):
            args.overrides.insert(0, args.config)   # `eval key=value --weights W`: no CONFIG
            args.config = None
        moved = [t for t in extra if looks_like_override(t)]
        extra = [t for t in extra if not looks_like_override(t)]
        args.overrides = list(args.overrides) + moved + list(getattr(args, "override", []) or [])
        args.override = args.overrides               # the old attribute, same list
        bad = [o for o in args.overrides if "=" not in o]
        if bad:
            parser.error(f"override {bad[0]!r}: expected key=value")
    if extra:
        parser.error("unrecognized arguments: " + " ".join(extra))
    return args


def _config_is_optional(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "_config_optional", False))


def checkpoint_config(config: str | None, weights: str | None, overrides: list[str]) -> Config:
    """The config of a command working on a checkpoint: CONFIG when given, else the one stored in
    ``weights`` (our checkpoints carry their resolved config), plus the overrides."""
    if config is not None:
        return load_config(config, overrides)
    if weights is None:
        raise FileNotFoundError("give a CONFIG or --weights (a checkpoint holds its config)")
    stored = load_checkpoint(weights).get("config")
    if not isinstance(stored, dict):
        raise WeightMismatchError(f"{weights}: holds no config; give CONFIG (or convert official "
                                  "weights with `rtmdet convert mmdet`)")
    return load_config(Config.model_validate(stored), overrides)


def model_and_config(config: str | None, weights: str, overrides: list[str]
                     ) -> tuple[torch.nn.Module, Config]:
    """(model with the checkpoint's weights, config) for eval/predict."""
    cfg = checkpoint_config(config, weights, overrides)
    model, _ = load_weights(weights, cfg)
    return model, cfg


def optional_config(p: argparse.ArgumentParser) -> None:
    """CONFIG optional + marks the parser so a leading key=value is not taken for CONFIG."""
    add_config(p)
    p.set_defaults(_config_optional=True)


def check_precision(cfg: Config | None, dtype: str, engine: str = "torch") -> None:
    """The precision options a model type supports: rotated models run fp32 in torch only
    (eval's DOTA protocol and predict alike); int8 is onnxruntime's, not OpenVINO's. Without a
    config only the engine/dtype pair is checked."""
    if cfg is not None and cfg.model.type == "rotated" and (dtype != "fp32" or engine != "torch"):
        raise DtypeError(f"--dtype {dtype} --engine {engine}: rotated models run fp32 in torch "
                         "only")
    if dtype == "int8" and engine != "torch":
        raise DtypeError("--dtype int8 runs onnxruntime; it does not combine with --engine "
                         f"{engine}")


def precision_model(model: torch.nn.Module, cfg: Config, dtype: str, device: str,
                    calib_images: int, size: int, cache_dir: Path, engine: str = "torch"
                    ) -> tuple[torch.nn.Module, str]:
    """(the model eval/predict run, the dtype that runs) for ``--dtype``/``--engine``: bf16
    resolved against this CPU (fp32 and one log line without native bf16); int8 = the
    statically quantised ONNX graph (input side ``size``) in onnxruntime, calibrated on
    training images of ``cfg.data``; ``engine="openvino"``: the fp32 graph compiled by OpenVINO
    at the resolved dtype. ONNX files are cached in ``cache_dir``."""
    check_precision(cfg, dtype, engine)
    if engine == "openvino":
        if device != "cpu":
            print(f"note: --engine openvino runs on the CPU (not {device})")
        ran = resolve_dtype(dtype, "cpu")
        det = openvino_detector(model, cfg, size, ran, cache_dir)
        print(f"openvino {ran}: {det.info['onnx_fp32']} (OpenVINO {det.info['openvino']})")
        return det, ran
    if dtype != "int8":
        return model, resolve_dtype(dtype, device)
    if device != "cpu":
        print(f"note: --dtype int8 runs onnxruntime on the CPU (not {device})")
    det = int8_detector(model, cfg, size, calib_images, cache_dir)
    print(f"int8: {det.info['onnx_int8']} (calibrated on {det.info['calibration']['images']} "
          "training images)")
    return det, "int8"
