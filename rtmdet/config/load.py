"""One typed configuration object for model, data, training, evaluation and benchmarking.

A config is resolved in layers: built-in defaults → preset (``rtmdet-s``…) → YAML files, each
of which may name a ``base`` (a preset or another YAML path) → dotted command-line overrides
(``model.backbone.kernel_size=7``). The merged dict is validated once by pydantic with unknown
keys forbidden and no silent type coercion, and every error is reported as one line naming the
dotted key and the file (or override) that set it — ablations are small diffs, so a typo in one
must not silently train the baseline.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from rtmdet.utils.io import atomic_write_text
from rtmdet.utils.yaml_io import load_yaml_text, read_yaml_mapping

from .checks import consistency_errors
from .presets import PRESETS
from .schema import Config, ConfigError, flatten_dict


# ----------------------------------------------------------------------------- loading
def _merge(dst: dict[str, Any], src: dict[str, Any], source: str,
           origins: dict[str, str], prefix: str = "") -> None:
    """Deep-merge ``src`` into ``dst`` recording which source set each dotted key."""
    for k, v in src.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _merge(dst[k], v, source, origins, key + ".")
        else:
            dst[k] = copy.deepcopy(v)
            origins[key] = source
            if isinstance(v, dict):
                for sub in flatten_dict(v, key + "."):
                    origins[sub] = source


def _layers(source: str | Path, seen: tuple[str, ...] = ()) -> list[tuple[str, dict[str, Any]]]:
    """The chain of (source name, dict) from the deepest base to ``source`` itself."""
    name = str(source)
    if name in PRESETS:
        return [(f"preset {name}", PRESETS[name])]
    path = Path(source)
    if path.suffix not in (".yaml", ".yml") and not path.exists():
        raise ConfigError(f"{name}: not a preset ({', '.join(PRESETS)}) nor a YAML file")
    key = str(path.resolve())
    if key in seen:
        raise ConfigError(f"{path}: base chain loops back to itself")
    data = read_yaml_mapping(path, ConfigError, allow_empty=False)
    base = data.pop("base", None)
    chain: list[tuple[str, dict[str, Any]]] = []
    if base is not None:
        if not isinstance(base, str):
            raise ConfigError(f"{path}: base: must be a preset name or a YAML path")
        base_src = base if base in PRESETS else str((path.parent / base))
        chain = _layers(base_src, seen + (key,))
    return chain + [(str(path), data)]


def parse_override(item: str) -> tuple[str, Any]:
    """``a.b.c=value`` → (``a.b.c``, YAML-parsed value) so ``7`` is an int and ``[3,9,9,3]`` a list."""
    if "=" not in item:
        raise ConfigError(f"override {item!r}: expected key=value")
    key, raw = item.split("=", 1)
    try:
        value = load_yaml_text(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def _nest(key: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = value
    for part in reversed(key.split(".")):
        out = {part: out}
    return out


def load_config(source: str | Path | Config | None = None,
                overrides: list[str] | dict[str, Any] | None = None) -> Config:
    """Resolve preset/YAML ``source`` plus ``overrides`` into a validated :class:`Config`.

    ``overrides`` is a list of ``key=value`` strings (CLI form) or a ``{dotted_key: value}``
    mapping (experiment variants).
    """
    if isinstance(source, Config):
        merged, origins = source.to_dict(), {}
        layers: list[tuple[str, dict[str, Any]]] = []
    else:
        merged, origins = Config().to_dict(), {}
        layers = _layers(source) if source is not None else []
    for name, data in layers:
        _merge(merged, data, name, origins)
    items = (list(overrides.items()) if isinstance(overrides, dict)
             else [parse_override(o) for o in (overrides or [])])
    for key, value in items:
        _merge(merged, _nest(key, value), f"override {key}", origins)
    return _validate(merged, origins)


def _validate(data: dict[str, Any], origins: dict[str, str]) -> Config:
    try:
        cfg = Config.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        source = _origin(key, origins)
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        else:
            text = err["msg"].removeprefix("Value error, ")
            msg = f"{text} (got {err.get('input')!r})"
        more = f" [+{len(e.errors()) - 1} more]" if len(e.errors()) > 1 else ""
        raise ConfigError(f"{source}: {key}: {msg}{more}") from None
    problems = consistency_errors(cfg)
    if problems:
        key, msg = problems[0]
        more = f" [+{len(problems) - 1} more]" if len(problems) > 1 else ""
        raise ConfigError(f"{_origin(key, origins)}: {key}: {msg}{more}")
    return cfg


def _origin(key: str, origins: dict[str, str]) -> str:
    parts = key.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in origins:
            return origins[".".join(parts[:n])]
    return "defaults"


def save_config(cfg: Config, path: str | Path) -> None:
    atomic_write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
