"""RTMDet model family. Build from a config with :func:`rtmdet.build_model`."""
from .cspnext import CSPNeXt
from .detector import RTMDet
from .head import RTMDetHead
from .pafpn import CSPNeXtPAFPN

__all__ = ["CSPNeXt", "CSPNeXtPAFPN", "RTMDet", "RTMDetHead"]
