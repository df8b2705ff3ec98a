"""Box geometry on tensors, shared by models, assigners, losses and evaluation: prior points,
the distance box coder, IoU and class-wise NMS for axis-aligned boxes (``boxes``); the le90
rotated-box convention, the rotated coder, exact rotated IoU and rotated NMS (``rotated``); the
dynamic-convolution mask geometry of RTMDet-Ins (``masks``). torch/numpy only, no models.
"""
