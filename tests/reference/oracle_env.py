"""The official RTMDet code made importable on a CPU-only machine (runs in the oracle venv only).

Three things stand between ``pip install mmdet==3.3.0 mmcv-lite`` and a working official
model on CPU, and this module fixes each without editing any installed file:

- mmcv-lite has no compiled ``mmcv._ext`` but ``mmdet``/``mmrotate`` import ``mmcv.ops`` at
  import time. We compile the three CPU ops the test paths need (``nms``, ``nms_rotated``,
  ``box_iou_rotated``) from the C++ sources that ship in the mmcv-lite wheel, with our own
  bindings (``oracle_ops.cpp``), and register a stand-in ``mmcv._ext`` that serves them; every
  other op raises when *called* (construction, forward and losses never call one). The stand-in
  has a spec without a loader, so mmengine's ``mmcv_full_available()`` stays False and mmengine
  does not switch to mmcv-full code paths.
- mmdet 3.3.0 refuses mmcv ≥ 2.2.0 and mmrotate 1.0.0rc1 refuses mmcv > 2.1 / mmdet > 3.2:
  the version strings are lowered while those packages import, then restored.
- mmrotate imports torchvision for a detector we do not use: an empty stand-in module.
- The configs use SyncBN; :func:`load_config` turns it into BatchNorm (same state-dict keys) and
  drops the pretrained-backbone download (the class default init applies instead).
"""
from __future__ import annotations

import importlib.machinery
import os
import sys
import types
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ORACLE = Path(os.environ.get("RTMDET_ORACLE", "/work/oracle"))
MMROTATE_SRC = ORACLE / "mmrotate"
_EXT_SOURCES = ("pytorch/nms.cpp", "pytorch/cpu/nms.cpp", "pytorch/nms_rotated.cpp",
                "pytorch/cpu/nms_rotated.cpp", "pytorch/box_iou_rotated.cpp",
                "pytorch/cpu/box_iou_rotated.cpp")


def _compile_ops() -> types.ModuleType:
    """Build (cached in ``$RTMDET_ORACLE/build``) the official CPU NMS ops from mmcv's sources."""
    import mmcv
    from torch.utils.cpp_extension import load

    csrc = Path(mmcv.__file__).parent / "ops" / "csrc"
    build = ORACLE / "build" / "mmcv_cpu_ops"
    src = build / "src"
    src.mkdir(parents=True, exist_ok=True)
    sources = [str(HERE / "oracle_ops.cpp")]
    for rel in _EXT_SOURCES:  # two files are called nms.cpp: ninja needs distinct names
        dst = src / rel.replace("/", "_")
        if not dst.exists() or dst.read_bytes() != (csrc / rel).read_bytes():
            dst.write_bytes((csrc / rel).read_bytes())
        sources.append(str(dst))
    return load(name="mmcv_cpu_ops", sources=sources,
                extra_include_paths=[str(csrc / "common"), str(csrc / "pytorch")],
                extra_cflags=["-O2"], build_directory=str(build), verbose=False)


class _StandInExt(types.ModuleType):
    """``mmcv._ext``: the compiled ops, and a raising placeholder for every other name."""

    def __init__(self, ops: types.ModuleType) -> None:
        super().__init__("mmcv._ext")
        self.__spec__ = importlib.machinery.ModuleSpec("mmcv._ext", None)  # no loader
        for name in ("nms", "nms_rotated", "box_iou_rotated"):
            setattr(self, name, getattr(ops, name))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)

        def missing(*_: Any, **__: Any) -> None:
            raise NotImplementedError(f"mmcv op {name} is not compiled in the oracle venv")
        return missing


def _stand_in_torchvision() -> None:
    """mmrotate imports ``torchvision.transforms`` for H2RBox-v2 only (not RTMDet-R); the oracle
    venv has no torchvision, so an empty module takes its place unless the real one exists."""
    try:
        import torchvision  # noqa: F401
    except ImportError:
        tv = types.ModuleType("torchvision")
        tv.transforms = types.ModuleType("torchvision.transforms")
        sys.modules.update({"torchvision": tv, "torchvision.transforms": tv.transforms})


def import_official(rotated: bool = False) -> None:
    """Import mmdet (and mmrotate from ``$RTMDET_ORACLE/mmrotate``) and register their modules."""
    import mmcv

    if "mmcv._ext" not in sys.modules:
        sys.modules["mmcv._ext"] = _StandInExt(_compile_ops())
    real_mmcv = mmcv.__version__
    mmcv.__version__ = "2.1.0"  # mmdet 3.3.0 wants < 2.2.0, mmrotate <= 2.1.0
    try:
        import mmdet
        from mmdet.utils import register_all_modules
        register_all_modules(init_default_scope=False)
        if rotated:
            real_mmdet = mmdet.__version__
            mmdet.__version__ = "3.1.0"  # mmrotate 1.0.0rc1 wants <= 3.2.0
            sys.path.insert(0, str(MMROTATE_SRC))
            _stand_in_torchvision()
            try:
                import mmrotate  # noqa: F401
                from mmrotate.utils import register_all_modules as reg_rot
                reg_rot(init_default_scope=False)
            finally:
                mmdet.__version__ = real_mmdet
    finally:
        mmcv.__version__ = real_mmcv


def config_path(family: str, size: str) -> Path:
    """The official config file of a preset (``det``/``ins``/``rotated``, ``tiny``..``x``)."""
    import mmdet
    root = Path(mmdet.__file__).parent / ".mim" / "configs" / "rtmdet"
    if family == "det":
        return root / f"rtmdet_{size}_8xb32-300e_coco.py"
    if family == "ins":
        return root / f"rtmdet-ins_{size}_8xb{16 if size == 'x' else 32}-300e_coco.py"
    return MMROTATE_SRC / "configs" / "rotated_rtmdet" / f"rotated_rtmdet_{size}-3x-dota.py"


def _to_bn(node: Any) -> Any:
    if isinstance(node, dict):
        if node.get("type") == "SyncBN":
            node["type"] = "BN"
        for v in node.values():
            _to_bn(v)
    elif isinstance(node, (list, tuple)):
        for v in node:
            _to_bn(v)
    return node


def load_config(family: str, size: str, backbone_init_cfg: str = "default"):
    """The official model config of a preset, BatchNorm instead of SyncBN, no pretrained
    backbone download.

    Where a config loads an ImageNet checkpoint (``init_cfg=dict(type='Pretrained')``: tiny, s,
    the R sizes) that entry is removed, so the backbone falls back to its class default
    (``CSPNeXt``'s Kaiming-uniform init_cfg) exactly as in the configs that train from scratch
    (det/Ins l, m, x). Setting ``init_cfg=None`` instead would skip that default and leave
    the convs with ``ConvModule``'s construction-time Kaiming-normal init: that variant is
    ``backbone_init_cfg="none"``.
    """
    from mmengine.config import Config

    cfg = Config.fromfile(str(config_path(family, size)))
    model = cfg.model.to_dict() if hasattr(cfg.model, "to_dict") else dict(cfg.model)
    model = _to_bn(model)
    init = model["backbone"].get("init_cfg")
    if backbone_init_cfg == "none":
        model["backbone"]["init_cfg"] = None
    elif isinstance(init, dict) and init.get("type") == "Pretrained":
        del model["backbone"]["init_cfg"]
    return cfg, model


def build_official(family: str, size: str, backbone_init_cfg: str = "default"):
    """(config, the official model in eval mode on CPU), after ``init_weights()``."""
    from mmengine.registry import MODELS, DefaultScope

    cfg, model_cfg = load_config(family, size, backbone_init_cfg)
    with DefaultScope.overwrite_default_scope("mmrotate" if family == "rotated" else "mmdet"):
        model = MODELS.build(model_cfg)
    model.init_weights()
    return cfg, model.eval()
