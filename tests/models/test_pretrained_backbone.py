"""``train.init_from`` with a backbone-only checkpoint in the layout of the official CSPNeXt
ImageNet classifiers (``backbone.stem.0.conv.weight`` …, ``head.fc.*``), or bare backbone
names. The official backbone key names come from the in-repo reference layout of the
official model (tests/reference), so the synthetic checkpoint has exactly their names."""
from __future__ import annotations

import logging

import pytest
import torch

import rtmdet
from rtmdet.models.pretrained import is_backbone_checkpoint, load_backbone_checkpoint
from rtmdet.engine.trainer import Trainer
from tests.helpers.reference import _reference


def _classifier_checkpoint(preset: str, prefix: bool = True) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    sd = {}
    for key, shape, dt in _reference(preset)["layout"]:
        if key.startswith("backbone."):
            name = key if prefix else key[len("backbone."):]
            sd[name] = torch.randn(shape, generator=g) if dt == "float32" \
                else torch.zeros(shape, dtype=getattr(torch, dt))
    if prefix:  # the ImageNet classifier's own head, which a detector does not use
        sd["head.fc.weight"] = torch.randn(1000, 384 if "tiny" in preset else 512, generator=g)
        sd["head.fc.bias"] = torch.zeros(1000)
    return sd


@pytest.mark.parametrize("prefix", [True, False])
def test_backbone_checkpoint_fills_backbone_only(prefix):
    sd = _classifier_checkpoint("rtmdet-tiny", prefix)
    assert is_backbone_checkpoint(sd) and is_backbone_checkpoint({"state_dict": sd})
    model = rtmdet.build_model("rtmdet-tiny")
    neck_before = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("neck.")}
    report = load_backbone_checkpoint(model, {"state_dict": sd, "meta": {}})
    ours = model.state_dict()
    assert report["loaded"] == sorted(k for k in ours if k.startswith("backbone."))
    assert all(not k.startswith("backbone.") for k in report["new"])
    assert report["unused"] == (["head.fc.bias", "head.fc.weight"] if prefix else [])
    key = "backbone.stage2.1.main_conv.conv.weight" if prefix else "stage2.1.main_conv.conv.weight"
    assert torch.equal(ours["backbone.stages.1.csp.main_conv.conv.weight"], sd[key])
    assert all(torch.equal(ours[k], v) for k, v in neck_before.items())


def test_detector_checkpoints_are_not_backbone_checkpoints():
    official = rtmdet.build_model("rtmdet-tiny").state_dict()
    assert not is_backbone_checkpoint(official)
    assert not is_backbone_checkpoint({f"bbox_head.{k}": torch.zeros(1) for k in ("a", "b")})


def test_backbone_checkpoint_of_another_size_fails_in_one_line():
    with pytest.raises(ValueError, match="another size") as e:
        load_backbone_checkpoint(rtmdet.build_model("rtmdet-s"),
                                 _classifier_checkpoint("rtmdet-tiny"))
    assert "\n" not in str(e.value)


def test_train_init_from_reports_what_loaded(tmp_path, caplog):
    path = tmp_path / "cspnext-tiny_imagenet_600e_state_dict.pth"
    torch.save({"state_dict": _classifier_checkpoint("rtmdet-tiny")}, path)
    model = rtmdet.build_model("rtmdet-tiny")
    with caplog.at_level(logging.INFO):
        Trainer._init_from(model, str(path))
    n_backbone = sum(1 for k in model.state_dict() if k.startswith("backbone."))
    assert f"{n_backbone} tensors loaded" in caplog.text and "2 unused" in caplog.text
