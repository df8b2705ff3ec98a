"""The in-repo official reference data (tests/reference/, made by `make reference`): where it
lives, which presets it covers, and the seeded weight recipe both sides rebuild weights from."""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import torch

# tests/reference, beside tests/helpers/
REF_DIR = next(p / "reference" for p in Path(__file__).resolve().parents
               if (p / "reference" / "recipe.py").exists())
PRESETS = [f"rtmdet-{s}" for s in ("tiny", "s", "m", "l", "x")] + \
          [f"rtmdet-ins-{s}" for s in ("tiny", "s", "m", "l", "x")] + \
          [f"rtmdet-r-{s}" for s in ("tiny", "s", "m", "l")]
RAW_NAMES = {"det": ("cls_scores", "bbox_preds"),
             "ins": ("cls_scores", "bbox_preds", "kernel_preds", "mask_feats"),
             "rotated": ("cls_scores", "bbox_preds", "angle_preds")}


def _load_recipe():
    spec = importlib.util.spec_from_file_location("reference_recipe", REF_DIR / "recipe.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


recipe = _load_recipe()


@lru_cache(maxsize=1)
def _reference(preset: str) -> dict:
    path = REF_DIR / f"{preset}.pt"
    assert path.exists(), f"{path} missing: run `make reference`"
    return torch.load(path, map_location="cpu", weights_only=True)
