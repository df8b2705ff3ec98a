"""The official side of ``benchmarks/vs_official.py``: a worker that builds the official RTMDet
(mmdetection 3.3.0) and times it on command. Runs **only in the oracle venv**
(``tests/reference/make_reference.py`` builds it), as a subprocess of the benchmark.

Why a long-lived worker and not one process per measurement: the driver interleaves official
and ours block by block (A B A B …) so that the minute-scale speed drift of a shared VM lands
on both alike; a worker keeps its model, ONNX session, optimizer and dataset caches warm
between blocks, exactly as our side does in the driver process.

Protocol: one JSON object per line on stdin, one JSON reply per line on the *original* stdout
(everything mmengine/mmdet print goes to stderr). Timing is done here, around the call only
(``perf_counter``), so the pipe never enters a measurement. Ops:

- ``threads`` ``{torch, cv2}``: the thread pools of the next measurements;
- ``build`` ``{size, seed, weights}``: the official model from its config (SyncBN → BN, no
  download), BatchNorm statistics collected on 4 random batches, state dict saved to
  ``weights`` for ours to load (same weights on both sides);
- ``infer`` ``{input, outputs, onnx}``: the inference variants on the saved input — ``plain``
  (eval, tensor-mode ``_forward``), ``fused_cl`` (mmcv's own ``fuse_conv_bn``, the
  head's shared convs copied per level first — :func:`unshared` — + channels-last),
  ``ort`` (the tensor-mode graph exported with the TorchScript exporter, opset 17, as ours, in
  onnxruntime with the same session options), ``bf16`` (``fused_cl`` under CPU bf16 autocast:
  the same trick as our bf16 path, applied to the official network); every variant's outputs
  are saved to ``outputs`` for the driver to compare;
- ``train`` ``{batch, lr}``: the official training step as mmengine runs it — ``model.train_step``
  (data preprocessor, forward, assigner, losses, backward, ``OptimWrapper`` AdamW with the
  config's ``paramwise_cfg``) plus the ``ExpMomentumEMA`` update the config's ``EMAHook`` does;
- ``data`` ``{root, size, warmup}``: the config's stage-1 train pipeline (CachedMosaic …
  CachedMixUp, PackDetInputs) on the COCO set at ``root``; ``warmup`` items fill the caches;
- ``time`` ``{what, n}``: one untimed call (absorbs the switch between thread pools and
  processes), then ``n`` timed calls of runner ``what``; replies the seconds of each.
"""
from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "reference"))

import oracle_env  # noqa: E402  (tests/reference: the CPU shims for the official code)
from vs_official_stats import cycling_items, time_calls  # noqa: E402  (standard library only)


def flat(outputs: Any) -> list:
    """The tensor-mode outputs ((cls per level), (bbox per level)) as one flat list."""
    return [t for group in outputs for t in group]


def unshared(model: Any) -> Any:
    """``model`` with the SepBN head's convs copied per level.

    The head shares each conv across levels but keeps a BatchNorm per level; mmcv's
    ``fuse_conv_bn`` folds in place, so on the shared tensor every level's BN is folded in turn
    and all but one level come out wrong (max |Δ| 0.25 on the logits here). One conv per level
    is what a correct fold needs (ours does the same in ``rtmdet.models.fuse``)."""
    import copy
    head = model.bbox_head
    for convs in (head.cls_convs, head.reg_convs):
        for level in list(convs)[1:]:
            for m in level:
                m.conv = copy.deepcopy(m.conv)
    return model


class Official:
    """The official model and whatever runners the driver has asked for so far."""

    def __init__(self) -> None:
        self.runners: dict[str, Callable[[], Any]] = {}
        self.cfg = self.model = None

    def threads(self, torch: int, cv2: int) -> dict:
        import cv2 as cv
        import torch as T
        T.set_num_threads(torch)
        cv.setNumThreads(cv2)
        return {"torch": T.get_num_threads(), "cv2": cv.getNumThreads()}

    def build(self, size: str, seed: int, weights: str) -> dict:
        import torch
        torch.manual_seed(seed)
        self.cfg, self.model = oracle_env.build_official("det", size)
        gen = torch.Generator().manual_seed(seed)
        self.model.train()
        with torch.no_grad():                       # non-trivial BN statistics
            for _ in range(4):
                self.model._forward(torch.randn(2, 3, 320, 320, generator=gen))
        self.model.eval()
        torch.save(self.model.state_dict(), weights)
        return {"params": sum(p.numel() for p in self.model.parameters()),
                "config": oracle_env.config_path("det", size).name}

    def infer(self, input: str, outputs: str, onnx: str, threads: int) -> dict:
        import copy

        import onnxruntime as ort
        import torch
        from mmcv.cnn import fuse_conv_bn

        x = torch.load(input, weights_only=True)
        plain = self.model.eval()
        fused = fuse_conv_bn(unshared(copy.deepcopy(plain))).to(memory_format=torch.channels_last)
        x_cl = x.contiguous(memory_format=torch.channels_last)

        class Tensors(torch.nn.Module):
            def __init__(self, m: torch.nn.Module) -> None:
                super().__init__()
                self.m = m

            def forward(self, t: torch.Tensor):
                return tuple(flat(self.m._forward(t)))

        if not Path(onnx).exists():
            buf = io.BytesIO()
            with torch.no_grad():
                torch.onnx.export(Tensors(plain).eval(), (torch.zeros_like(x),), buf,
                                  dynamo=False, opset_version=17, input_names=["images"],
                                  do_constant_folding=True)
            Path(onnx).write_bytes(buf.getvalue())
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        sess = ort.InferenceSession(onnx, opts, providers=["CPUExecutionProvider"])
        feed = {"images": x.numpy()}

        def torch_step(model: torch.nn.Module, inp: torch.Tensor, bf16: bool = False):
            def step():
                with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
                    out = flat(model._forward(inp))
                return [t.float() for t in out]
            return step

        self.runners.update({
            "plain": torch_step(plain, x), "fused_cl": torch_step(fused, x_cl),
            "ort": lambda: [torch.from_numpy(a) for a in sess.run(None, feed)],
            "bf16": torch_step(fused, x_cl, bf16=True)})
        torch.save({k: [t.contiguous() for t in self.runners[k]()] for k in
                    ("plain", "fused_cl", "ort", "bf16")}, outputs)
        return {"runners": ["plain", "fused_cl", "ort", "bf16"]}

    def train(self, batch: str, lr: float) -> dict:
        import copy

        import torch
        from mmdet.models.layers import ExpMomentumEMA
        from mmdet.structures import DetDataSample
        from mmengine.optim import build_optim_wrapper
        from mmengine.structures import InstanceData

        b = torch.load(batch, weights_only=True)
        model = copy.deepcopy(self.model).train()
        wrapper_cfg = copy.deepcopy(self.cfg.optim_wrapper)
        wrapper_cfg["optimizer"]["lr"] = lr
        optim = build_optim_wrapper(model, wrapper_cfg)
        ema = ExpMomentumEMA(model, momentum=0.0002, gamma=2000, update_buffers=True)
        h, w = b["images"].shape[-2:]
        meta = dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w), scale_factor=(1., 1.))

        def data() -> dict:
            samples = []
            for boxes, labels in zip(b["boxes"], b["labels"]):
                s = DetDataSample(metainfo=meta)
                s.gt_instances = InstanceData(bboxes=boxes.clone(), labels=labels.clone())
                samples.append(s)
            return {"inputs": list(b["images"]), "data_samples": samples}

        def step():
            losses = model.train_step(data(), optim)
            ema.update_parameters(model)
            return losses

        self.runners["train"] = step
        return {"optimizer": type(optim.optimizer).__name__,
                "param_groups": len(optim.optimizer.param_groups)}

    def data(self, root: str, size: int, warmup: int) -> dict:
        from mmdet.datasets import CocoDataset
        from mmengine.registry import init_default_scope

        init_default_scope("mmdet")                 # the pipeline's transform names
        pipeline = []
        for step in self.cfg.train_pipeline:
            step = {k: v for k, v in dict(step).items() if k != "backend_args"}
            for key in ("img_scale", "scale", "crop_size", "size"):
                if isinstance(step.get(key), (tuple, list)):
                    step[key] = tuple(int(round(v * size / 640)) for v in step[key])
            pipeline.append(step)
        ann = "annotations/instances_train.json"
        classes = tuple(c["name"] for c in json.loads((Path(root) / ann).read_text())["categories"])
        ds = CocoDataset(data_root=root, ann_file=ann, data_prefix=dict(img="images/train/"),
                         metainfo=dict(classes=classes), filter_cfg=dict(filter_empty_gt=True),
                         pipeline=pipeline)
        self.runners["data"] = item = cycling_items(ds, warmup)
        return {"images": len(ds), "pipeline": pipeline,
                "item_image_shape": list(item()["inputs"].shape)}

    def time(self, what: str, n: int) -> dict:
        return {"seconds": time_calls(self.runners[what], n)}


def main() -> None:
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)                  # library prints (Python and C) go to stderr, not the protocol
    sys.stdout = sys.stderr
    oracle_env.import_official()
    import cv2
    import mmdet
    import mmengine
    import numpy
    import onnxruntime
    import torch
    worker = Official()
    proto.write(json.dumps({"ready": True, "versions": {
        "mmdet": mmdet.__version__, "mmengine": mmengine.__version__, "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__, "opencv": cv2.__version__,
        "numpy": numpy.__version__}}) + "\n")
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd.pop("op")
        if op == "quit":
            break
        try:
            reply = getattr(worker, op)(**cmd)
        except Exception as e:      # reported to the driver, which stops with this line
            reply = {"error": f"{op}: {type(e).__name__}: {e}"}
        proto.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    main()
