"""Alternative label assigners for the assigner comparison (``train.assigner.type``): SimOTA,
ATSS and TOOD's task-aligned one, next to the dynamic soft-label assigner in
:mod:`rtmdet.assigners.dsla`, all with its call signature and result."""
from .atss import ATSSAssigner
from .build import ASSIGNERS, build_assigner
from .simota import SimOTAAssigner
from .task_aligned import TaskAlignedAssigner

__all__ = ["ASSIGNERS", "ATSSAssigner", "SimOTAAssigner", "TaskAlignedAssigner",
           "build_assigner"]
