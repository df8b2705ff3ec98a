"""Reading a YAML file whose top level must be a mapping, with one-line errors.

Config files, experiment files and params.yaml are all written by hand, so a typo must end in a
single ``<file>: <what is wrong>`` line rather than a parser traceback. Each caller passes its
own error class (``ConfigError``, ``ExperimentError``) so its CLI catches and prints it the same
way as its other checks. Kept free of torch so Snakemake's DAG parsing stays fast.

The loader differs from ``yaml.safe_load`` in two ways that hand-written configs need:
``4e-3`` is a float (YAML 1.1 wants ``4.0e-3`` and reads ``4e-3`` as a string, so a learning
rate written the way everybody writes it was rejected), and a key given twice in one mapping is
an error (PyYAML silently keeps the last value, so an ablation could train what it did not say).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

# YAML 1.2's float: the exponent's sign and the mantissa's dot are optional ("4e-3", "1E5").
_FLOAT = re.compile(r"""^[-+]?(?:
      [0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    | \.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
    | [0-9][0-9_]*[eE][-+]?[0-9]+
    | \.(?:inf|Inf|INF) | \.(?:nan|NaN|NAN))$""", re.X)


class DuplicateKeyError(yaml.YAMLError):
    """The same key twice in one mapping."""


class StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with YAML 1.2 floats and duplicate keys refused."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise DuplicateKeyError(f"duplicate key {key!r} (line {seen[key]} and line "
                                            f"{line})")
                seen[key] = line
            except TypeError:            # an unhashable key: SafeLoader reports it itself
                continue
        return super().construct_mapping(node, deep=deep)


# Replace the float resolver: drop 1.1's (first character set), then add the 1.2 pattern.
StrictLoader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:float"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
StrictLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT,
                                   list("-+0123456789."))


def load_yaml_text(text: str) -> Any:
    """Parse one YAML document with :class:`StrictLoader` (also for ``key=value`` overrides)."""
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - StrictLoader is a SafeLoader


def read_yaml_mapping(path: str | Path, error: type[Exception],
                      allow_empty: bool = True) -> dict[str, Any]:
    """The file's top-level mapping (``{}`` for an empty file unless ``allow_empty`` is False);
    ``error`` for a missing, unreadable or non-UTF-8 file, a folder, invalid YAML, a duplicate
    key or a top level that is not a mapping."""
    path = Path(path)
    try:
        data = load_yaml_text(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not a YAML file") from None
    except PermissionError:
        raise error(f"{path}: permission denied") from None
    except UnicodeDecodeError as e:
        raise error(f"{path}: not UTF-8 text (byte {e.start}: {e.object[e.start:e.start + 1]!r})"
                    ) from None
    except DuplicateKeyError as e:
        raise error(f"{path}: {e}") from None
    except yaml.YAMLError as e:
        raise error(f"{path}: invalid YAML: {str(e).splitlines()[0]}") from None
    if data is None:
        if not allow_empty:
            raise error(f"{path}: empty file (expected a mapping, e.g. `base: rtmdet-s`)")
        return {}
    if not isinstance(data, dict):
        raise error(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data
