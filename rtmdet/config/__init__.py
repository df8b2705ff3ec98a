"""Configuration: the typed schema (``schema``), the named model sizes (``presets``) and the
layered loader (``load``: defaults → preset → YAML ``base`` chain → dotted overrides, validated
once, errors as one line naming the key and its source). One :class:`Config` object travels
with every run, checkpoint and result; everything above this layer reads its settings from it.
Imports only :mod:`rtmdet.utils`.
"""
from .load import load_config, parse_override, save_config
from .presets import PRESETS
from .schema import (AssignerConfig, ATSSConfig, BackboneConfig, BenchConfig, Config, ConfigError,
                     DataConfig, EvalConfig, HeadConfig, LossConfig, ModelConfig, NeckConfig,
                     SimOTAConfig, TaskAlignedConfig, TrainConfig, config_hash, flatten_dict)

__all__ = ["AssignerConfig", "ATSSConfig", "BackboneConfig", "BenchConfig", "Config", "ConfigError",
           "DataConfig", "EvalConfig", "HeadConfig", "LossConfig", "ModelConfig", "NeckConfig",
           "PRESETS", "SimOTAConfig", "TaskAlignedConfig", "TrainConfig", "config_hash", "flatten_dict",
           "load_config", "parse_override", "save_config"]
