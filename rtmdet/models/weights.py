"""Every way weights get into a model: official mmdetection/mmrotate checkpoints
(:func:`load_mmdet_weights`, ``rtmdet convert``), our own checkpoints (:func:`save_weights`,
:func:`load_weights`, :func:`load_model` for the export/bench commands), and ``train.init_from``
(:func:`init_from_detector`: RTMDet-R from a detection checkpoint, SPEC §10).

Our module names follow the official ones except for the backbone stages (``stages.{i}.
downsample/spp/csp`` instead of positional ``stage{i+1}.{j}``) and the head prefix (``head.``
instead of ``bbox_head.``). The mapping is explicit and strict: every official tensor must land
on exactly one of ours with the same shape, and every one of ours must be covered, otherwise
the error lists what does not fit.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rtmdet.config import Config, load_config
from rtmdet.utils.checkpoint_file import UnsafeCheckpointError
from rtmdet.utils.errors import CheckpointError
from rtmdet.utils.io import atomic_torch_save, load_checkpoint

from .build import build_model

_STAGE = re.compile(r"^backbone\.stage(\d)\.(\d)\.(.*)$")


class WeightMismatchError(RuntimeError):
    pass


def _map_key(key: str, model: nn.Module) -> str:
    m = _STAGE.match(key)
    if m:
        stage, pos, rest = int(m.group(1)) - 1, int(m.group(2)), m.group(3)
        has_spp = getattr(model.backbone.stages[stage], "spp", None) is not None
        part = ("downsample", "spp", "csp")[pos] if has_spp else ("downsample", "csp")[min(pos, 1)]
        if not has_spp and pos > 1:
            part = f"unexpected{pos}"
        return f"backbone.stages.{stage}.{part}.{rest}"
    if key.startswith("bbox_head."):
        return "head." + key[len("bbox_head."):]
    return key


def unwrap_state_dict(obj: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Accept a bare state dict or a checkpoint dict holding one under ``state_dict``."""
    sd = obj.get("state_dict", obj) if isinstance(obj, dict) else obj
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise WeightMismatchError("input is not a state dict of tensors")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}


def load_mmdet_weights(model: nn.Module, state_dict: dict[str, Any]) -> list[str]:
    """Copy official mmdet weights into ``model`` (strict). Returns the list of our keys set.

    Official checkpoints store a shared head conv once per level; the copies must be equal
    (checked) since our model holds one tensor for them.
    """
    sd = unwrap_state_dict(state_dict)
    ours = model.state_dict(keep_vars=True)
    problems: list[str] = []
    mapped: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        new = _map_key(key, model)
        if new not in ours:
            problems.append(f"unexpected official key {key} (-> {new})")
        elif tuple(ours[new].shape) != tuple(value.shape):
            problems.append(f"shape mismatch {key}: official {tuple(value.shape)} "
                            f"vs ours {tuple(ours[new].shape)} at {new}")
        else:
            mapped[new] = value
    problems += [f"missing in official weights: {k}" for k in ours if k not in mapped]
    # A tensor shared by several of our keys must receive identical official values.
    by_tensor: dict[int, list[str]] = {}
    for k, t in ours.items():
        by_tensor.setdefault(id(t), []).append(k)
    for keys in by_tensor.values():
        present = [k for k in keys if k in mapped]
        for k in present[1:]:
            if not torch.equal(mapped[k], mapped[present[0]]):
                problems.append(f"{k} differs from {present[0]} but our model shares that "
                                "tensor (head.share mode does not match the checkpoint)")
    if problems:
        shown = "\n  ".join(problems[:40])
        more = f"\n  ... and {len(problems) - 40} more" if len(problems) > 40 else ""
        kinds = {k: sum(p.startswith(k) for p in problems)
                 for k in ("shape mismatch", "unexpected", "missing")}
        head = ", ".join(f"{n} {k}" for k, n in kinds.items() if n)
        # The first line is what the CLI prints: counts by kind and the first problem.
        raise WeightMismatchError(f"{len(problems)} problem(s) loading official weights ({head}; "
                                  f"first: {problems[0]}) — another model size?\n  {shown}{more}")
    with torch.no_grad():
        for k, v in mapped.items():
            ours[k].copy_(v)
    return sorted(mapped)


def save_weights(path: str | Path, model: nn.Module, config: dict[str, Any],
                 meta: dict[str, Any] | None = None) -> Path:
    """Our checkpoint: plain tensors + the resolved config + metadata (``weights_only``-safe)."""
    return atomic_torch_save(path, {"state_dict": model.state_dict(), "config": config,
                                    "meta": meta or {}})


def load_weights(path: str | Path, model_source: Any = None) -> tuple[nn.Module, Any]:
    """Rebuild the model stored in one of our checkpoints (its config travels with it)."""
    ckpt = load_checkpoint(path)
    if "state_dict" not in ckpt or "config" not in ckpt:
        raise WeightMismatchError(f"{path}: not an rtmdet checkpoint (need state_dict + config); "
                                  "convert official weights with `rtmdet convert mmdet`")
    cfg = load_config(model_source) if model_source is not None else _config_from(ckpt["config"])
    model = build_model(cfg)
    sd = ckpt.get("ema_state_dict") or ckpt["state_dict"]
    problem = state_dict_mismatch(model, sd)
    if problem:
        source = ("its own config" if model_source is None
                  else getattr(model_source, "name", model_source))
        raise WeightMismatchError(f"{path}: weights do not fit the model of {source}: {problem}")
    bad = [k for k, v in sd.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{path}: {len(bad)} of {len(sd)} tensors hold NaN/inf (a diverged "
                              f"training, e.g. {bad[0]}); refusing to use these weights")
    model.load_state_dict(sd, strict=True)
    return model, cfg


def state_dict_mismatch(model: nn.Module, sd: dict[str, torch.Tensor]) -> str | None:
    """One line saying how ``sd`` fails to fit ``model`` (missing, unexpected, other shapes),
    or None; ``load_state_dict`` would raise a multi-hundred-line message instead."""
    ours = model.state_dict()
    missing = [k for k in ours if k not in sd]
    unexpected = [k for k in sd if k not in ours]
    shapes = [k for k in ours if k in sd and tuple(sd[k].shape) != tuple(ours[k].shape)]
    if not (missing or unexpected or shapes):
        return None
    parts = [f"{len(v)} {name} (e.g. {v[0]}{extra(v[0])})" for name, v, extra in (
        ("missing", missing, lambda k: ""), ("unexpected", unexpected, lambda k: ""),
        ("with another shape", shapes,
         lambda k: f": {tuple(sd[k].shape)} vs {tuple(ours[k].shape)}")) if v]
    return "; ".join(parts) + " — a checkpoint of another model size or type?"


def _config_from(d: dict[str, Any]):
    return load_config(Config.model_validate(d))


def convert_mmdet_file(src: str | Path, dst: str | Path, model_name: str,
                       unsafe_load: bool = False, classes: list[str] | None = None) -> Path:
    """``rtmdet convert mmdet``: official ``.pth`` → our checkpoint for preset ``model_name``
    (``classes``: the names stored in its meta, e.g. COCO's for the official release)."""
    if unsafe_load:
        try:
            obj = torch.load(src, map_location="cpu", weights_only=False)
        except FileNotFoundError:
            raise FileNotFoundError(f"{src}: no such file") from None
        except Exception as e:  # noqa: BLE001 - a corrupt file stays corrupt without the guard
            raise CheckpointError(f"{src}: corrupt or truncated file, not readable by torch.load "
                                  f"({type(e).__name__})") from None
    else:
        try:
            obj = load_checkpoint(src)
        except UnsafeCheckpointError as e:   # official releases pickle non-tensor metadata
            raise CheckpointError(f"{e}; if you trust the file, rerun with --unsafe-load"
                                  ) from None
    cfg = load_config(model_name)
    model = build_model(cfg)
    n = len(load_mmdet_weights(model, obj))
    return save_weights(dst, model, cfg.to_dict(),
                        {"source": str(src), "converted_from": "mmdet", "tensors": n,
                         **({"classes": list(classes)} if classes else {})})


def init_from_detector(model: nn.Module, state_dict: dict[str, Any]) -> dict[str, list[str]]:
    """Initialise RTMDet-R from an RTMDet detection checkpoint of the same size: ours
    (``head.``, ``backbone.stages.``) or official mmdet (``bbox_head.``, ``backbone.stageN.``),
    bare or under ``state_dict``.

    Every tensor whose name and shape match is copied (backbone, neck, towers, distance convs,
    and the classifier when the class counts agree); the rest keep their fresh initialisation.
    Returns ``{"loaded", "new", "unused"}`` lists of key names (ours for the first two, the
    checkpoint's for the last) so the caller can log exactly what was transferred.
    """
    sd = unwrap_state_dict(state_dict)
    official = any(k.startswith("bbox_head.") or k.startswith("backbone.stage1.") for k in sd)
    ours = model.state_dict(keep_vars=True)
    loaded: dict[str, torch.Tensor] = {}
    unused = []
    for key, value in sd.items():
        new = _map_key(key, model) if official else key
        if new is not None and new in ours and tuple(ours[new].shape) == tuple(value.shape):
            loaded[new] = value
        else:
            unused.append(key)
    missing = [k for k in ours if k.startswith(("backbone.", "neck.")) and k not in loaded]
    if missing:
        raise ValueError(f"{len(missing)} backbone/neck tensor(s) not in the checkpoint or of "
                         f"another shape (e.g. {missing[0]}): not an RTMDet of the same size?")
    with torch.no_grad():
        for k, v in loaded.items():
            ours[k].copy_(v)
    return {"loaded": sorted(loaded), "new": sorted(k for k in ours if k not in loaded),
            "unused": sorted(unused)}


@torch.no_grad()
def calibrate_bn(model: nn.Module, size: int = 320, batch: int = 2, seed: int = 0) -> nn.Module:
    """Set every BatchNorm's running statistics to those of random input.

    Freshly initialised weights shrink activations by orders of magnitude per layer (the head
    sees ~1e-9), which makes parity checks vacuous and can hit slow denormal paths in timing.
    With the statistics of the actual activations, eval-mode BN renormalises each layer, so a
    random model behaves numerically like a trained one.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the calibration batches
    gen = torch.Generator().manual_seed(seed)
    model.train()
    p = next(model.parameters())
    model.forward_raw(torch.randn(batch, 3, size, size, generator=gen).to(p))
    for bn, m in zip(bns, momenta):
        bn.momentum = m
    return model.eval()


def load_model(config: str, weights: str | None, overrides: list[str] | None = None):
    """(model, cfg) for ``config`` with ``weights`` loaded strictly, or random weights."""
    cfg = load_config(config, overrides)
    if weights is None:
        print("warning: no --weights given; using random weights (BatchNorm statistics "
              "calibrated on random input)")
        return calibrate_bn(build_model(cfg)), cfg
    try:
        model, _ = load_weights(weights, cfg)
    except RuntimeError as e:  # load_state_dict(strict=True): keys/shapes differ
        if isinstance(e, WeightMismatchError):
            raise
        detail = " ".join(str(e).split("\n")[1:2]).strip()[:200]
        raise WeightMismatchError(f"{weights} does not fit config {config!r} "
                                  f"(model.* differs from the checkpoint's): {detail}") from None
    return model.eval(), cfg
