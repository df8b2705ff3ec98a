"""Training losses: the functional losses (quality focal, GIoU, dice in ``functional``), target
padding and the cross-process normaliser (``targets``), and one criterion per model type —
detection (``criterion``), instance segmentation (``ins_criterion``), rotated
(``rotated_criterion``) — chosen by ``build``. A criterion flattens raw head outputs, calls an
assigner from :mod:`rtmdet.assigners` and returns a named dict of losses.
"""
