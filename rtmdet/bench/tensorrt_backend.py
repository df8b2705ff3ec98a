"""TensorRT backend for ``rtmdet bench latency``: FP16/FP32 engine built from our ONNX graph.

TensorRT is an optional extra (and needs a CUDA GPU), so this module imports ``tensorrt`` only
inside its functions: importing it, or :mod:`rtmdet.bench.latency`, works without TensorRT installed,
and a missing TensorRT surfaces as :class:`rtmdet.bench.runners.Unavailable`, which makes the benchmark
fall back to the next best backend. Engines are cached by the hash of the ONNX bytes, the
TensorRT version, the GPU name and the precision, because building one takes minutes.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from rtmdet.utils.io import atomic_write_bytes

from .runners import Runner, Unavailable


def _trt_engine(onnx_path: Path, fp16: bool, cache_dir: Path):
    """(engine, engine path, loaded-from-cache) for ``onnx_path``; a cached engine that no
    longer deserialises (other TensorRT build) is rebuilt rather than trusted."""
    import tensorrt as trt    # lazy: optional extra, needs a CUDA GPU

    gpu = torch.cuda.get_device_name()
    key = hashlib.sha256(onnx_path.read_bytes() + f"{trt.__version__}|{gpu}|{fp16}".encode())
    path = cache_dir / f"{onnx_path.stem}-{key.hexdigest()[:16]}.engine"
    logger = trt.Logger(trt.Logger.WARNING)
    runtime = trt.Runtime(logger)
    if path.exists():
        engine = runtime.deserialize_cuda_engine(path.read_bytes())
        if engine is not None:
            return engine, path, True
    builder = trt.Builder(logger)
    flag = getattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH", None)
    network = builder.create_network(0 if flag is None else 1 << int(flag))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        raise Unavailable(f"TensorRT cannot parse {onnx_path}: {parser.get_error(0)}")
    config = builder.create_builder_config()
    if hasattr(config, "set_memory_pool_limit"):
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 4 << 30)
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    blob = builder.build_serialized_network(network, config)
    if blob is None:
        raise Unavailable(f"TensorRT failed to build an engine from {onnx_path}")
    atomic_write_bytes(path, bytes(blob))
    return runtime.deserialize_cuda_engine(bytes(blob)), path, False


def trt_runner(onnx_path: Path, x: torch.Tensor, fp16: bool, cache_dir: Path) -> Runner:
    """A runner whose step enqueues the engine on its own CUDA stream with preallocated device
    buffers, so the timed call is the engine alone (no allocation, no host copies)."""
    try:
        import tensorrt as trt    # lazy: optional extra, needs a CUDA GPU
    except ImportError:
        raise Unavailable("tensorrt is not installed (pip install tensorrt)") from None
    if not torch.cuda.is_available():
        raise Unavailable("TensorRT needs a CUDA GPU and torch sees none")
    engine, path, cached = _trt_engine(onnx_path, fp16, cache_dir)
    dtypes = {getattr(trt, n): getattr(torch, t) for n, t in
              [("float32", "float32"), ("float16", "float16"), ("int32", "int32"),
               ("int64", "int64"), ("bool", "bool")] if hasattr(trt, n)}
    context = engine.create_execution_context()
    stream = torch.cuda.Stream()
    buffers: list[torch.Tensor] = []  # referenced by the step so they outlive it
    if hasattr(engine, "num_io_tensors"):  # TensorRT >= 8.5: named tensors
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            dtype = dtypes[engine.get_tensor_dtype(name)]
            if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                t = x.to("cuda", dtype).contiguous()
            else:
                t = torch.empty(tuple(engine.get_tensor_shape(name)), dtype=dtype, device="cuda")
            context.set_tensor_address(name, t.data_ptr())
            buffers.append(t)
        step = lambda: context.execute_async_v3(stream.cuda_stream)  # noqa: E731
    else:  # TensorRT 8.4 (the paper's version): binding indices
        for i in range(engine.num_bindings):
            dtype = dtypes[engine.get_binding_dtype(i)]
            buffers.append(x.to("cuda", dtype).contiguous() if engine.binding_is_input(i) else
                           torch.empty(tuple(engine.get_binding_shape(i)), dtype=dtype,
                                       device="cuda"))
        ptrs = [b.data_ptr() for b in buffers]
        step = lambda: context.execute_async_v2(ptrs, stream.cuda_stream)  # noqa: E731
    return Runner(step, "tensorrt", "cuda", fp16, stream,
                  {"engine": str(path), "engine_cached": cached, "buffers": buffers})
