"""Config schema: presets, base chains, dotted overrides and one-line errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from rtmdet.config import PRESETS, Config, ConfigError, load_config, save_config


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["rtmdet-tiny", "rtmdet-s", "rtmdet-m", "rtmdet-l", "rtmdet-x"])
def test_presets_validate(name):
    cfg = load_config(name)
    assert cfg.name == name


def test_preset_values_follow_spec():
    tiny = load_config("rtmdet-tiny")
    assert (tiny.model.backbone.deepen_factor, tiny.model.backbone.widen_factor) == (0.167, 0.375)
    assert tiny.model.neck.out_channels == 96 and not tiny.model.head.exp_on_reg
    assert (tiny.data.mosaic_cache_size, tiny.data.mosaic_pop) == (20, "fifo")
    assert (tiny.data.mixup_cache_size, tiny.data.mixup_prob) == (10, 0.5)
    x = load_config("rtmdet-x")
    assert x.model.neck.num_csp_blocks == 4 and x.model.head.exp_on_reg
    assert x.data.resize_ratio == [0.1, 2.0]


def test_base_chain_and_overrides(tmp_path):
    write(tmp_path / "base.yaml", "base: rtmdet-s\ntrain:\n  epochs: 12\n")
    exp = write(tmp_path / "exp.yaml", "base: base.yaml\nmodel:\n  backbone:\n    kernel_size: 3\n")
    cfg = load_config(exp, ["model.backbone.kernel_size=7", "model.backbone.stage_blocks=[3,9,9,3]",
                            "train.grad_clip=10.0"])
    assert cfg.model.backbone.kernel_size == 7                      # CLI beats the file
    assert cfg.model.backbone.stage_blocks == [3, 9, 9, 3]
    assert cfg.train.epochs == 12                                    # from the base file
    assert cfg.model.backbone.widen_factor == 0.5                    # from the preset
    assert cfg.train.grad_clip == 10.0
    # dict overrides (experiment variants) behave the same
    assert load_config(exp, {"model.head.share": "none"}).model.head.share == "none"


def test_unknown_key_names_key_and_file(tmp_path):
    exp = write(tmp_path / "typo.yaml", "base: rtmdet-s\nmodel:\n  backbone:\n    kernel_sise: 3\n")
    with pytest.raises(ConfigError) as e:
        load_config(exp)
    msg = str(e.value)
    assert "\n" not in msg
    assert str(exp) in msg and "model.backbone.kernel_sise" in msg and "unknown key" in msg


def test_wrong_type_names_key_and_source(tmp_path):
    exp = write(tmp_path / "bad.yaml", "train:\n  epochs: ten\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: train\.epochs: Input should be a valid integer"):
        load_config(exp)
    with pytest.raises(ConfigError, match=r"override model\.backbone\.channel_attention: "):
        load_config("rtmdet-s", ["model.backbone.channel_attention=maybe"])
    with pytest.raises(ConfigError, match=r"model\.head\.share"):
        load_config("rtmdet-s", ["model.head.share=sometimes"])


def test_bad_sources(tmp_path):
    with pytest.raises(ConfigError, match="not a preset"):
        load_config("rtmdet-huge")
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(write(tmp_path / "broken.yaml", "model: [unclosed\n"))
    a = write(tmp_path / "a.yaml", "base: b.yaml\n")
    write(tmp_path / "b.yaml", "base: a.yaml\n")
    with pytest.raises(ConfigError, match="loops"):
        load_config(a)
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config("rtmdet-s", ["model.backbone.kernel_size"])


def test_save_and_reload_roundtrip(tmp_path):
    cfg = load_config("rtmdet-m", ["train.epochs=3"])
    save_config(cfg, tmp_path / "resolved.yaml")
    again = load_config(tmp_path / "resolved.yaml")
    assert again == cfg
    assert Config.model_validate(cfg.to_dict()) == cfg
    assert cfg.flat()["model.backbone.deepen_factor"] == 0.67
    assert set(PRESETS) >= {"rtmdet-tiny", "rtmdet-s", "rtmdet-m", "rtmdet-l", "rtmdet-x"}
