"""The seeded recipe both sides use to build the reference weights and inputs (torch only).

The reference files store no weights: the official model's state-dict *layout* (key names,
shapes, dtypes, which keys hold the same tensor) plus the outputs of the official model on
weights made by this recipe. Our tests rebuild exactly those weights from the layout and feed
them through our official-key importer (``rtmdet.load_mmdet_weights``), so the test exercises
the importer too. Every tensor comes from its own ``torch.Generator`` seeded by a stable hash of
``RECIPE`` and the key name, so one key's values do not depend on the order or presence of any
other key.

Per tensor (a key's role is read from the layout: a prefix with a ``running_mean`` is a
BatchNorm):

- conv weights (ndim ≥ 2): N(0, 2/fan_in), fan_in = in_channels/groups · k · k (He): the
  variance a signal keeps through a conv + SiLU, so 100+ layers neither blow up nor vanish and
  the outputs depend strongly on the input;
- BatchNorm: weight U(0.6, 1.4), bias N(0, 0.2²), running mean N(0, 0.2²), running var
  U(0.5, 2.0): no BatchNorm is the identity, so a wrong eps or a swapped statistic shows;
- conv biases: N(0, 0.1²); the classifier biases (``rtm_cls``) are shifted by ``cls_shift``
  (stored in each reference file's meta) so that some tens of detections pass the score
  threshold;
- integer buffers (``num_batches_tracked``): zeros.

Inputs are N(0, 1) images, already normalised (fed directly to the backbone).
"""
from __future__ import annotations

import zlib

import torch

RECIPE = "rtmdet-reference-v1"
INPUT_SHAPE = (2, 3, 64, 96)   # two images, H ≠ W, strides 8/16/32 give 8×12, 4×6, 2×3 priors


def key_seed(key: str) -> int:
    """Stable across processes and platforms (CRC32, not Python's salted ``hash``)."""
    return zlib.crc32(f"{RECIPE}:{key}".encode())


def _gen(key: str) -> torch.Generator:
    return torch.Generator().manual_seed(key_seed(key))


def make_tensor(key: str, shape: tuple[int, ...], dtype: torch.dtype, bn_prefixes: set[str],
                cls_shift: float) -> torch.Tensor:
    """One tensor of the recipe (float64 draws, cast to ``dtype``)."""
    g = _gen(key)
    if not dtype.is_floating_point:
        return torch.zeros(shape, dtype=dtype)
    prefix, _, leaf = key.rpartition(".")
    f64 = torch.float64
    if prefix in bn_prefixes:
        if leaf == "weight":
            t = 0.6 + 0.8 * torch.rand(shape, generator=g, dtype=f64)
        elif leaf == "running_var":
            t = 0.5 + 1.5 * torch.rand(shape, generator=g, dtype=f64)
        else:  # bias, running_mean
            t = 0.2 * torch.randn(shape, generator=g, dtype=f64)
    elif len(shape) >= 2:
        fan_in = 1
        for s in shape[1:]:
            fan_in *= s
        t = torch.randn(shape, generator=g, dtype=f64) * (2.0 / fan_in) ** 0.5
    else:
        t = 0.1 * torch.randn(shape, generator=g, dtype=f64)
        if ".rtm_cls." in f".{key}" and leaf == "bias":
            t = t + cls_shift
    return t.to(dtype)


def make_state_dict(layout: list[tuple[str, tuple[int, ...], str]], aliases: dict[str, str],
                    cls_shift: float) -> dict[str, torch.Tensor]:
    """The recipe's weights for an official layout: ``[(key, shape, dtype name)]``, and
    ``aliases`` mapping a key to the key whose tensor it is (shared head convs)."""
    bn = {k[: -len(".running_mean")] for k, _, _ in layout if k.endswith(".running_mean")}
    sd: dict[str, torch.Tensor] = {}
    for key, shape, dtype in layout:
        if key not in aliases:
            sd[key] = make_tensor(key, tuple(shape), getattr(torch, dtype), bn, cls_shift)
    for key, target in aliases.items():
        sd[key] = sd[target]
    return {k: sd[k] for k, _, _ in layout}


def make_input(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(INPUT_SHAPE, generator=_gen("input"), dtype=torch.float64).to(dtype)


def checksum(sd: dict[str, torch.Tensor]) -> float:
    """Σ|w|·(1 + position): a one-number check that both sides built the same weights."""
    return float(sum((i + 1) * v.double().abs().sum().item() for i, v in enumerate(sd.values())))


# The fixed batch of the loss-at-init check: two 128×128 N(0, 1) images (already normalised)
# and hand-placed boxes of several sizes (xyxy pixels, COCO class indices), so that every
# stride gets positives.
BATCH_SHAPE = (2, 3, 128, 128)
BATCH_BOXES = (
    ((10.0, 12.0, 60.0, 70.0, 3), (70.0, 20.0, 120.0, 100.0, 10), (30.0, 80.0, 50.0, 110.0, 0),
     (4.0, 4.0, 124.0, 124.0, 56)),
    ((5.0, 5.0, 120.0, 120.0, 7), (40.0, 40.0, 64.0, 64.0, 2), (90.0, 10.0, 110.0, 30.0, 2)),
)


def make_batch() -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
    """(images, [{"boxes": (N, 4) float32, "labels": (N,) int64}]) of the loss-at-init check."""
    images = torch.randn(BATCH_SHAPE, generator=_gen("batch"), dtype=torch.float64).float()
    targets = [{"boxes": torch.tensor([b[:4] for b in img], dtype=torch.float32),
                "labels": torch.tensor([b[4] for b in img], dtype=torch.int64)}
               for img in BATCH_BOXES]
    return images, targets
