"""Domains of config values and the checks that span several fields.

A value outside its domain (``train.batch_size=0``, an even kernel, ``betas: [0.9]``) used to
pass the type check and die deep inside model building or the first training step with a
traceback — or, worse, silently mean something else (``max_iters_per_epoch: 0`` read as
"unset"). Every numeric field of the schema therefore carries its domain here, and the
cross-field rules (input size vs. strides) run once after validation, so each mistake ends as
one ``<source>: <dotted.key>: <what is wrong>`` line like any other config error.
"""
from __future__ import annotations

import re
from typing import Annotated, Any, Callable

from pydantic import AfterValidator, Field

# ----------------------------------------------------------------------------- scalar domains
PosInt = Annotated[int, Field(ge=1)]              # counts, sizes, intervals
NonNegInt = Annotated[int, Field(ge=0)]           # counts that may be zero (warm-up, workers)
PosFloat = Annotated[float, Field(gt=0)]          # scales, learning rates, epsilons
NonNegFloat = Annotated[float, Field(ge=0)]       # loss weights, decays
Fraction = Annotated[float, Field(ge=0, le=1)]    # probabilities, ratios, thresholds
OpenFraction = Annotated[float, Field(ge=0, lt=1)]  # Adam betas, momentum


def _odd(v: int) -> int:
    if v < 1 or v % 2 == 0:
        raise ValueError("must be an odd number >= 1 (a 'same' padding needs a centre pixel)")
    return v


OddKernel = Annotated[int, AfterValidator(_odd)]

_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def _device(v: str) -> str:
    if not _DEVICE.match(v):
        raise ValueError("must be auto, cpu, cuda or cuda:N")
    return v


Device = Annotated[str, AfterValidator(_device)]


def _increasing(v: list[int]) -> list[int]:
    if any(b <= a for a, b in zip(v, v[1:])):
        raise ValueError("must be strictly increasing")
    return v


def _range_pair(v: list[float]) -> list[float]:
    if v[0] > v[1]:
        raise ValueError("must be [low, high] with low <= high")
    return v


def fixed_list(item: Any, n: int, *checks: Callable[[Any], Any]) -> Any:
    """A list of exactly ``n`` items of type ``item`` (then ``checks``)."""
    return Annotated[list[item], Field(min_length=n, max_length=n),
                     *(AfterValidator(c) for c in checks)]


Strides = fixed_list(PosInt, 3, _increasing)       # one per pyramid level P3-P5 (the neck's outputs)
StageBlocks = fixed_list(PosInt, 4)                # one per CSPNeXt stage
Betas = fixed_list(OpenFraction, 2)
RatioRange = fixed_list(PosFloat, 2, _range_pair)
HsvGains = fixed_list(NonNegInt, 3)


# ----------------------------------------------------------------------------- cross-field
def consistency_errors(cfg: Any) -> list[tuple[str, str]]:
    """``(dotted key, message)`` for each rule between fields that ``cfg`` breaks."""
    out: list[tuple[str, str]] = []
    stride = max(cfg.model.head.strides)
    if cfg.data.img_size % stride:
        out.append(("data.img_size", f"must be a multiple of the largest stride {stride} "
                                     f"(got {cfg.data.img_size})"))
    if cfg.bench.size % stride:
        out.append(("bench.size", f"must be a multiple of the largest stride {stride} "
                                  f"(got {cfg.bench.size})"))
    return out
