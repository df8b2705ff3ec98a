"""Measurements in the paper's protocols: backend runners and forward latency (``latency``), the
optional TensorRT engine backend (``tensorrt_backend``), parameter and FLOP counts
(``complexity``) and the cached vs uncached data-pipeline throughput (``data_throughput``).
Every result carries the environment it was measured in.
"""
