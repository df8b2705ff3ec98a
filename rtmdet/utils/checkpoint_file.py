"""Reading one of our checkpoint files, with a one-line reason when it cannot be used.

``torch.load`` fails in a dozen ways (``PytorchStreamReader failed reading zip archive``,
``EOFError``, ``UnpicklingError: Weights only load failed ...`` with a 15-line advice to turn the
safety off) and the advice is wrong for the common case: a truncated or corrupt file is not made
loadable by ``weights_only=False``, it only stops protecting the user. So the failure is
classified here, without ever executing the file: a pickle that parses and imports Python
callables is *unsafe* (refused, the payload never runs), anything that does not parse is
*corrupt*, a file that loads but is not a mapping is *not a checkpoint*.
"""
from __future__ import annotations

import io
import pickletools
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError

# What torch.save itself pickles (tensor rebuilds, ordered dicts): not a sign of a payload.
_TENSOR_GLOBALS = ("torch", "collections OrderedDict", "_codecs encode")


class UnsafeCheckpointError(CheckpointError):
    """The file would import Python callables when unpickled: refused, never executed."""


def _pickle_bytes(path: Path) -> bytes:
    """The pickle inside a ``torch.save`` zip archive, or the file itself (a plain pickle)."""
    data = path.read_bytes()
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = [n for n in z.namelist() if n.endswith("data.pkl")]
            return z.read(names[0]) if names else b""
    return data


def pickled_code(path: Path) -> str | None:
    """The first Python callable the file's pickle would import beyond what a tensor checkpoint
    needs (e.g. ``posix system``); None when there is none or the bytes do not parse as a
    pickle (then the file is corrupt). Reads opcodes only (``pickletools``), runs nothing."""
    try:
        ops = list(pickletools.genops(_pickle_bytes(path)))
    except Exception:  # noqa: BLE001 - not a pickle: corrupt, not unsafe
        return None
    for n, (op, arg, _) in enumerate(ops):
        if op.name == "GLOBAL":
            name = str(arg)
        elif op.name == "STACK_GLOBAL":
            before = [str(a) for _, a, _ in ops[:n] if isinstance(a, str)]
            name = " ".join(before[-2:]) if len(before) >= 2 else "a Python callable"
        else:
            continue
        if not name.startswith(_TENSOR_GLOBALS):
            return name
    return None


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load one of our checkpoints with ``weights_only`` (a checkpoint can never execute
    code); :class:`CheckpointError` says whether the file is missing, corrupt, unsafe or not a
    checkpoint."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file (an interrupted copy or download?)")
    try:
        with warnings.catch_warnings():  # torch warns about a plain pickle before refusing it
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - classified below, never retried unsafely
        text = str(e)
        if "Weights only load failed" in text:
            code = pickled_code(path)
            if "Unsupported global" in text or code is not None:
                what = code or text.split("Unsupported global:", 1)[-1].split(" was ")[0].strip()
                raise UnsafeCheckpointError(
                    f"{path}: refused: it holds pickled Python objects ({what}) that could run "
                    "code when loaded; rtmdet checkpoints hold tensors only") from None
        first = (type(e).__name__ if not text.strip() or "Weights only" in text
                 else text.strip().splitlines()[0].split(". ")[0][:100])
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint, not readable by "
                              f"torch.load ({first})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: not an rtmdet checkpoint (holds a {type(obj).__name__}, "
                              "not a mapping)")
    return obj
